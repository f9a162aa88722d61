"""The template library: scanning the template folders into the database, checking which models
each workflow is missing, which presets provide them, and queueing those presets."""

import os
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.db import transaction

from downloads.models import DownloadJob
from downloads.queue import QueueError, install
from presets.models import Preset, PresetFile, corrupt_files, model_roots
from presets.sizes import human_size
from storage import canonical_folder
from templates_scan.models import ModelReference, Template
from templates_scan.scanner import ModelRef, WorkflowError, scan_file


def template_dirs():
    return [Path(d) for d in settings.COMFYUI_TEMPLATE_DIRS]


def scan_directories(dirs=None):
    """Bring the Template rows in line with the workflow files on disk; return counts (`errors`:
    the files that cannot be read, whether parsed now or before).

    Only new or changed files (by mtime and size) are parsed; rows of vanished files go. The
    parsing happens first, the database work after, in one transaction of bulk statements.
    """
    dirs = template_dirs() if dirs is None else dirs
    rows = list(Template.objects.values_list("path", "id", "mtime_ns", "size"))
    known = {path: pk for path, pk, _, _ in rows}
    unchanged = {(path, mtime_ns, size) for path, _, mtime_ns, size in rows}
    seen, parsed = set(), []
    for path, stat in _workflow_files(dirs):
        key = str(path)
        seen.add(key)
        if (key, stat.st_mtime_ns, stat.st_size) not in unchanged:
            parsed.append((path, stat, _parse(path)))
    gone = [pk for path, pk in known.items() if path not in seen]
    with transaction.atomic():
        Template.objects.filter(pk__in=gone + [known[str(p)] for p, _, _ in parsed if str(p) in known]).delete()
        templates = Template.objects.bulk_create(
            [
                Template(path=str(path), name=path.stem, mtime_ns=stat.st_mtime_ns, size=stat.st_size, **fields)
                for path, stat, (fields, _) in parsed
            ]
        )
        ModelReference.objects.bulk_create(
            [
                ModelReference(
                    template=template,
                    name=ref.name,
                    directory=ref.directory,
                    path=ref.path,
                    nodes=list(ref.nodes),
                    url=ref.url or "",
                    hash=ref.hash or "",
                    guess=ref.guess or "",
                    managed=ref.managed or "",
                )
                for template, (_, _, (_, refs)) in zip(templates, parsed, strict=False)
                for ref in refs
            ]
        )
    errors = Template.objects.exclude(error="").count()
    return {"files": len(seen), "parsed": len(parsed), "errors": errors, "removed": len(gone)}


def scan_summary(counts):
    return (
        f"{counts['files']} workflow files: {counts['parsed']} parsed, {counts['errors']} unreadable, "
        f"{counts['removed']} removed"
    )


def _parse(path):
    """(Template fields, model refs) of one file; a broken file gets its error and no refs."""
    try:
        result = scan_file(path)
    except WorkflowError as exc:
        return {"format": "", "error": str(exc), "warnings": []}, []
    return {"format": result.format, "error": "", "warnings": result.warnings[:50]}, result.models


def _workflow_files(dirs):
    for root in dirs:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.lower().endswith(".json") and not filename.startswith("."):
                    path = Path(dirpath) / filename
                    try:
                        yield path, path.stat()
                    except OSError:
                        continue


def as_ref(reference):
    return ModelRef(
        name=reference.name,
        directory=reference.directory,
        path=reference.path,
        nodes=tuple(reference.nodes),
        url=reference.url or None,
        hash=reference.hash or None,
        guess=reference.guess or None,
        managed=reference.managed or None,
    )


class PresetIndex:
    """Which live presets provide a model file: by folder and path, else by folder and file name;
    a file whose folder is unknown, by file name in any folder."""

    def __init__(self):
        self.by_path, self.by_name, self.by_file_name = {}, {}, {}
        files = PresetFile.objects.filter(preset__retired_at__isnull=True).values_list("path", "preset_id")
        for path, preset_id in files:
            folder, _, rest = path.partition("/")
            folder = canonical_folder(folder)
            name = rest.rsplit("/", 1)[-1]
            self.by_path.setdefault((folder, rest), set()).add(preset_id)
            self.by_name.setdefault((folder, name), set()).add(preset_id)
            self.by_file_name.setdefault(name, set()).add(folder)

    def folder_of(self, path):
        """The one folder the catalogue's files of this name are in; None for none or several."""
        folders = self.by_file_name.get(path.rsplit("/", 1)[-1], ())
        return next(iter(folders)) if len(folders) == 1 else None

    def providers(self, ref):
        name = ref.path.rsplit("/", 1)[-1]
        if not ref.directory:
            folders = self.by_file_name.get(name, ())
            return sorted({pk for folder in folders for pk in self.by_name[folder, name]})
        folder = canonical_folder(ref.directory)
        found = self.by_path.get((folder, ref.path)) or self.by_name.get((folder, name))
        return sorted(found or ())


class Checker:
    """Checks refs against the disk and the catalogue; one per request, remembering what it found
    on disk, since templates share their models."""

    def __init__(self):
        self.roots = model_roots()
        self.index = PresetIndex()
        self.found = {}
        self._on_disk = None
        self.corrupt = corrupt_files()

    def on_disk(self, path):
        """The folders holding a file at this path, from one walk of the model directories made
        on first need (only a workflow that leaves a file's folder open needs it)."""
        if self._on_disk is None:
            self._on_disk = {}
            for entry in self.roots.walk():
                if entry.folder and not entry.partial and entry.link in (None, "inside"):
                    self._on_disk.setdefault(entry.name, set()).add(entry.folder)
        return self._on_disk.get(path, set())

    def resolve(self, ref):
        """(ref, where its folder comes from): the workflow's own; else the one folder under the
        model roots holding a file at its path ("disk"); else the one folder the catalogue's
        files of that name are in ("catalogue"); else the scanner's guess ("guess"); else None,
        the folder unknown. A file the node downloads itself has no folder here ("node")."""
        if ref.managed:
            return ref, "node"
        if ref.directory:
            return ref, "workflow"
        folders = () if ref.unsafe else self.on_disk(ref.path)
        if len(folders) == 1:
            return replace(ref, directory=next(iter(folders))), "disk"
        folder = self.index.folder_of(ref.path)
        if folder is not None:
            return replace(ref, directory=folder), "catalogue"
        if ref.guess:
            return replace(ref, directory=ref.guess), "guess"
        return ref, None

    def installed(self, ref):
        """True or False; None for a file its node downloads itself, which is not looked for.
        A file of unknown folder is installed when some model folder holds it."""
        if ref.managed:
            return None
        key = (ref.directory, ref.path)
        if key not in self.found:
            if ref.unsafe:
                self.found[key] = False
            elif ref.directory:
                # A file a verify found corrupt is on disk, yet not installed (as for presets).
                marked = f"{canonical_folder(ref.directory)}/{ref.path}" in self.corrupt
                self.found[key] = not marked and self.roots.locate(ref) is not None
            else:
                self.found[key] = bool(self.on_disk(ref.path))
        return self.found[key]

    def check(self, refs):
        """Each ref as a dict with its folder resolved, `installed` and, when missing, the
        presets that provide it."""
        checked = []
        for ref in refs:
            ref, source = self.resolve(ref)
            installed = self.installed(ref)
            checked.append(
                {
                    "name": ref.name,
                    "directory": ref.directory,
                    "folder_source": source,
                    "path": ref.path,
                    "nodes": list(ref.nodes),
                    "url": ref.url,
                    "hash": ref.hash,
                    "installed": installed,
                    "managed": ref.managed,
                    "inactive": ref.inactive,
                    "unsafe": ref.unsafe,
                    "presets": self.index.providers(ref) if installed is False else [],
                }
            )
        return checked


def summary(checked):
    """A workflow can run when every model its active nodes use is installed; the files nodes
    download by themselves are listed apart and never block it."""
    missing = [m for m in checked if m["installed"] is False]
    blocking = [m for m in missing if not m["inactive"]]
    return {
        "compatible": not blocking,
        "can_generate": not blocking,
        "missing_count": len(blocking),
        "missing_models": missing,
        "managed_models": [m for m in checked if m["managed"]],
    }


# What is known of a workflow that could not be read: nothing, not "nothing is missing".
UNREADABLE = {
    "compatible": None,
    "can_generate": None,
    "missing_count": None,
    "missing_models": [],
    "managed_models": [],
}


def template_report(template, checker=None):
    """What a template needs and lacks, checked against the disk now: read only, since a GET asks."""
    checked = (checker or Checker()).check([as_ref(r) for r in template.models.all()])
    report = UNREADABLE if template.error else summary(checked)
    return {
        "id": template.pk,
        "name": template.name,
        "path": shown_path(template.path),
        "format": template.format or None,
        "error": template.error or None,
        "warnings": template.warnings,
        "models_total": len(checked),
        **report,
    }


def shown_path(path):
    """A template's path inside its template folder: the server's own folders are nobody's business."""
    for root in template_dirs():
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            continue
    return Path(path).name


def all_reports():
    checker = Checker()
    return [template_report(t, checker) for t in Template.objects.prefetch_related("models")]


# The state a template's card shows when all it can get is in the queue: the furthest along.
QUEUE_STATES = ("downloading", "retrying", "paused", "queued")


def choose_presets(missing, sizes):
    """Fewest presets that provide the missing models: greedily, the one covering most, then smallest."""
    wanted = {(m["directory"], m["path"]): set(m["presets"]) for m in missing if m["presets"]}
    chosen = []
    while wanted:
        counts = {}
        for providers in wanted.values():
            for preset_id in providers:
                counts[preset_id] = counts.get(preset_id, 0) + 1
        best = min(counts, key=lambda p: (-counts[p], sizes.get(p) or 0, p))
        chosen.append(best)
        wanted = {key: providers for key, providers in wanted.items() if best not in providers}
    return chosen


class Planner:
    """What "Install missing" would queue for a template, and what of it is in the queue already.

    One per request, like Checker: the live presets and the active jobs are read once.
    """

    def __init__(self):
        live = Preset.objects.filter(retired_at__isnull=True).values_list("pk", "name", "approx_download_bytes")
        self.presets = {pk: {"id": pk, "name": name, "bytes": size} for pk, name, size in live}
        self.active = dict(DownloadJob.objects.active().values_list("preset_id", "state"))

    def plan(self, missing):
        sizes = {pk: preset["bytes"] for pk, preset in self.presets.items()}
        chosen = [
            {**self.presets[pk], "size": human_size(self.presets[pk]["bytes"]), "state": self.active.get(pk)}
            for pk in choose_presets(missing, sizes)
        ]
        to_queue = [p for p in chosen if p["state"] is None]
        total = sum(p["bytes"] or 0 for p in to_queue)
        in_queue = {p["state"] for p in chosen} - {None}
        return {
            "presets": chosen,
            "to_queue": to_queue,
            "total_bytes": total,
            "total": human_size(total),
            "sizes_unknown": any(p["bytes"] is None for p in to_queue),
            # Whole plan in the queue: the card shows the queue's state instead of "N missing".
            "state": next((s for s in QUEUE_STATES if s in in_queue), None) if chosen and not to_queue else None,
            # What the page compares with the live queue to know when to fetch the card again.
            "queue_key": " ".join(f"{p['id']}:{p['state'] or ''}" for p in chosen),
        }


def install_missing(missing, user=None, confirmed=None):
    """Queue the presets that bring the missing models (one job per preset, never a duplicate).

    `confirmed`, when given, is the list of presets the user agreed to: nothing else is queued.
    """
    outcome = {"queued": [], "already_queued": [], "already_installed": [], "refused": []}
    for preset in Planner().plan(missing)["presets"]:
        if confirmed is not None and preset["id"] not in confirmed:
            continue
        try:
            job, created = install(Preset.objects.get(pk=preset["id"]), user=user)
        except QueueError as error:  # others queueing and cancelling it right now
            outcome["refused"].append({"id": preset["id"], "error": str(error)})
            continue
        kind = "already_installed" if job is None else "queued" if created else "already_queued"
        outcome[kind].append(preset["id"])
    outcome["not_in_catalogue"] = [
        {"name": m["name"], "directory": m["directory"], "url": m["url"]} for m in missing if not m["presets"]
    ]
    return outcome
