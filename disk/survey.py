"""What the model disk holds, as the storage page and `GET /api/storage/` show it: the file
systems, usage per model folder, each preset's files on disk, the files no preset lists, the
.part files and whose they are, and the duplicates.

One walk of the model directories (storage.ModelRoots.walk) and one look-up per preset file
path (the same one every page uses, so "installed" means the same here as everywhere).
"""

import time
from collections import defaultdict

from downloads.models import JobFile, State
from presets.models import Preset, file_is_installed, model_roots, preset_is_installed, preset_rows, with_corrupt_marks
from storage import PART_SUFFIX, canonical_folder


class Survey:
    """One look at the disk and the catalogue; `report()` is the storage JSON."""

    def __init__(self):
        self.roots = model_roots()
        self.entries = self.roots.walk()
        self.by_full = {entry.full: entry for entry in self.entries}
        self.by_path = {entry.path: entry for entry in self.entries}
        self.rows = preset_rows(Preset.objects.all())
        paths = {f["path"] for row in self.rows for f in row["files"]}
        located = self.roots.locate_paths(paths, self.by_full)
        self.sizes = with_corrupt_marks({path: size for path, (_found, size) in located.items()})
        # The entry each installed preset file path is (None: found through a path the walk did
        # not take, such as a link the walk lists but does not follow).
        self.found = {path: self.by_full.get(str(found)) for path, (found, _size) in located.items()}
        self.located = {str(found) for found, _size in located.values()}
        self.listed = {_key(path) for path in paths}
        self.held = active_job_paths()

    def managed(self, entry):
        """Listed by a preset file: the file ComfyUI finds for it, or a copy it would find next."""
        return (entry.folder, entry.name) in self.listed or entry.full in self.located

    def unmanaged(self):
        return [entry for entry in self.entries if not entry.partial and not self.managed(entry)]

    def partials(self):
        return [entry for entry in self.entries if entry.partial]

    def job_of(self, entry):
        """The active download job whose .part this is, else None (an orphan)."""
        return self.held.get(entry.path)

    def report(self):
        return {
            "disk": self.roots.disks(),
            "folders": self.folders(),
            "presets": self.presets(),
            "unmanaged": [
                {"path": e.path, "bytes": e.size, "modified": _iso(e.mtime), "link": e.link} for e in self.unmanaged()
            ],
            "partials": [
                {"path": e.path, "bytes": e.partial_bytes, "modified": _iso(e.mtime), "job": self.job_of(e)}
                for e in self.partials()
            ],
            "duplicates": self.duplicates(),
        }

    def folders(self):
        """Files (links included) and their bytes per canonical model folder; .part files apart."""
        usage = defaultdict(lambda: {"files": 0, "bytes": 0})
        for entry in self.entries:
            if not entry.partial:
                usage[entry.folder]["files"] += 1
                usage[entry.folder]["bytes"] += entry.size
        return [{"name": name, **figures} for name, figures in sorted(usage.items())]

    def presets(self):
        """Each preset with a file on disk: its bytes there, how many of its files are installed,
        missing or there with a size other than the exact one, and the files it shares."""
        users = defaultdict(set)
        for row in self.rows:
            for file in row["files"]:
                users[file["path"]].add(row["id"])
        answer = []
        for row in self.rows:
            on_disk = {f["path"] for f in row["files"] if f["path"] in self.sizes}
            if not on_disk:
                continue
            installed = sum(1 for f in row["files"] if file_is_installed(f, self.sizes))
            answer.append(
                {
                    "id": row["id"],
                    "name": row["name"],
                    "installed": preset_is_installed(row["files"], self.sizes),
                    "bytes_on_disk": sum(self.sizes[path] for path in on_disk),
                    "files_present": installed,
                    "files_incomplete": sum(1 for f in row["files"] if f["path"] in on_disk) - installed,
                    "files_missing": sum(1 for f in row["files"] if f["path"] not in on_disk),
                    "shared": sorted(self.shown(path) for path in on_disk if len(users[path]) > 1),
                }
            )
        return answer

    def shown(self, path):
        """A preset file path as the storage JSON shows the file found for it."""
        entry = self.found.get(path)
        return entry.path if entry is not None else path

    def duplicates(self):
        """Files of the same size and the same known sha256: the one a completed download
        verified, else the catalogue's for a file installed at its exact size. Never by name."""
        known = {}
        for row in self.rows:
            for file in row["files"]:
                if file["sha256"] and file_is_installed(file, self.sizes):
                    known[file["path"]] = file["sha256"]
        verified = JobFile.objects.filter(state=State.COMPLETED).exclude(verified_sha256="").order_by("finished_at")
        for path, sha256 in verified.values_list("path", "verified_sha256"):
            if path in self.sizes:
                known[path] = sha256
        groups = defaultdict(set)
        for path, sha256 in known.items():
            entry = self.found.get(path)
            if entry is not None and entry.link is None:
                groups[(entry.size, sha256)].add(entry.path)
        return sorted(sorted(paths) for paths in groups.values() if len(paths) > 1)


def active_job_paths():
    """The files of active download jobs and their .part files, as shown paths (downloads always
    go under the model root), each mapped to its job's id: what clean-up never deletes."""
    files = JobFile.objects.filter(job__state__in=State.ACTIVE).values_list("path", "job_id")
    return {shown: job_id for path, job_id in files for shown in (path, path + PART_SUFFIX)}


def _key(path):
    folder, _, name = path.partition("/")
    return canonical_folder(folder), name


def _iso(timestamp):
    """ISO 8601 in UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
