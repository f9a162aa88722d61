"""Uninstall a preset: delete its model files that no other installed preset needs.

A file is found wherever ComfyUI would find it (the model root, its legacy folders, the extra
model paths), and every name it has there goes: a preset left with one copy would still count
as installed. A file stays when another installed preset lists it, or when a job of the queue
holds it (another preset's download may have skipped it as already there). Nothing leaves the
storage module's containment, and a symbolic link is unlinked, never followed.
"""

import os
import stat

from disk.models import StorageAction
from downloads.models import DownloadJob, JobFile
from downloads.queue import STATE_WORDS, active_job
from presets.models import Preset, PresetFile, clear_corrupt, disk_sizes, model_roots, preset_is_installed, preset_rows
from presets.sizes import human_size
from realtime.events import STORAGE_CHANGED, publish
from storage import LEGACY_FOLDERS, canonical_folder
from storage import Refused as NotRemovable


class Refused(Exception):
    """The preset has a job in the queue, which reads or writes its files (the API's 409)."""


def uninstall(preset, user=None):
    """Delete the preset's files that nothing else needs; return {"deleted", "kept_shared",
    "freed_bytes", "refused"} (paths as the storage page shows them; refused: [{path, reason}])."""
    job = active_job(preset)
    if job is not None:
        raise Refused(f"{preset.name} is {STATE_WORDS[job.state]} in the queue; cancel it or let it finish first")
    paths = list(dict.fromkeys(preset.files.values_list("path", flat=True)))
    needed = needed_elsewhere(preset, paths)
    roots = model_roots()
    deleted, kept, refused, gone, freed = [], [], [], [], 0
    for path in paths:
        entries = roots.entries(path)
        if _key(path) in needed:
            kept += [roots.shown(entry) for entry in entries]
            continue
        for entry in entries:
            shown = roots.shown(entry)
            try:
                freed += remove(roots, entry)
            except NotRemovable as refusal:
                refused.append({"path": shown, "reason": str(refusal)})
                continue
            except OSError as error:
                refused.append({"path": shown, "reason": error.strerror or str(error)})
                continue
            deleted.append(shown)
            gone.append(path)
    clear_corrupt(gone)  # a file put back by hand later starts unmarked
    result = f"deleted {len(deleted)} files ({human_size(freed)}), kept {len(kept)} shared"
    if refused:
        result += "; left " + ", ".join(f"{r['path']} ({r['reason']})" for r in refused)
    StorageAction.record(StorageAction.Kind.UNINSTALL, user, deleted, freed, preset.pk, result)
    publish(STORAGE_CHANGED, reason="uninstall", preset_id=preset.pk)
    return {"deleted": deleted, "kept_shared": kept, "freed_bytes": freed, "refused": refused}


def needed_elsewhere(preset, paths):
    """The files of `paths` (as folder/name keys) that another installed preset lists, whether
    or not it needs them to count as installed, or that a job of the queue holds."""
    spellings = {spelling for path in paths for spelling in _spellings(path)}
    others = PresetFile.objects.filter(path__in=spellings).exclude(preset=preset).values("preset_id")
    rows = preset_rows(Preset.objects.filter(pk__in=others))
    sizes = disk_sizes(f["path"] for row in rows for f in row["files"])
    listed = [f["path"] for row in rows if preset_is_installed(row["files"], sizes) for f in row["files"]]
    held = JobFile.objects.filter(job__in=DownloadJob.objects.active(), path__in=spellings)
    return {_key(path) for path in [*listed, *held.values_list("path", flat=True)]}


def remove(roots, entry):
    """Unlink one name (through the storage module's containment); return the bytes that freed.
    A link frees nothing (its target stays), and neither does a file with other hard links."""
    info = os.lstat(entry)
    roots.remove(str(entry))
    if stat.S_ISLNK(info.st_mode) or info.st_nlink > 1:
        return 0
    return info.st_size


def _key(path):
    """One key for the spellings ComfyUI takes for the same file (``clip/x`` is ``text_encoders/x``)."""
    folder, _, name = path.partition("/")
    return f"{canonical_folder(folder)}/{name}"


def _spellings(path):
    folder, _, name = path.partition("/")
    canonical = canonical_folder(folder)
    folders = {canonical, *(legacy for legacy, modern in LEGACY_FOLDERS.items() if modern == canonical)}
    return {f"{each}/{name}" for each in folders}
