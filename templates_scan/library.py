"""The template library: scanning the template folders into the database, checking which models
each workflow is missing, which presets provide them, and queueing those presets."""

import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction

from presets.models import Preset, PresetFile
from templates_scan.loaders import canonical_folder
from templates_scan.models import ModelReference, Template
from templates_scan.scanner import ModelRef, ModelRoots, WorkflowError, scan_file

log = logging.getLogger(__name__)


def template_dirs():
    return [Path(d) for d in settings.COMFYUI_TEMPLATE_DIRS]


def model_roots():
    return ModelRoots.from_settings(settings.MODEL_BASE_PATH, settings.COMFYUI_EXTRA_MODEL_PATHS)


def scan_directories(dirs=None):
    """Bring the Template rows in line with the workflow files on disk; return counts.

    Only new or changed files (by mtime and size) are parsed; rows of vanished files go.
    """
    dirs = template_dirs() if dirs is None else dirs
    known = {t.path: t for t in Template.objects.only("id", "path", "mtime_ns", "size")}
    seen, parsed, failed = set(), 0, 0
    for path, stat in _workflow_files(dirs):
        key = str(path)
        seen.add(key)
        row = known.get(key)
        if row and row.mtime_ns == stat.st_mtime_ns and row.size == stat.st_size:
            continue
        parsed += 1
        failed += not _store(path, stat, row)
    gone = [t.pk for p, t in known.items() if p not in seen]
    Template.objects.filter(pk__in=gone).delete()
    return {"files": len(seen), "parsed": parsed, "errors": failed, "removed": len(gone)}


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


def _store(path, stat, row):
    """Parse one file and replace its row and references; a broken file is kept with its error."""
    try:
        result = scan_file(path)
        fields = {"format": result.format, "error": "", "warnings": result.warnings[:50]}
        refs = result.models
    except WorkflowError as exc:
        fields = {"format": "", "error": str(exc), "warnings": []}
        refs = []
    with transaction.atomic():
        template, _ = Template.objects.update_or_create(
            path=str(path),
            defaults={"name": path.stem, "mtime_ns": stat.st_mtime_ns, "size": stat.st_size, **fields},
        )
        if row is not None:
            template.models.all().delete()
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
                )
                for ref in refs
            ]
        )
    return not fields["error"]


def as_ref(reference):
    return ModelRef(
        name=reference.name,
        directory=reference.directory,
        path=reference.path,
        nodes=tuple(reference.nodes),
        url=reference.url or None,
        hash=reference.hash or None,
    )


class PresetIndex:
    """Which live presets provide a model file: by folder and path, else by folder and file name."""

    def __init__(self):
        self.by_path, self.by_name = {}, {}
        files = PresetFile.objects.filter(preset__retired_at__isnull=True).values_list("path", "preset_id")
        for path, preset_id in files:
            folder, _, rest = path.partition("/")
            folder = canonical_folder(folder)
            self.by_path.setdefault((folder, rest), set()).add(preset_id)
            self.by_name.setdefault((folder, rest.rsplit("/", 1)[-1]), set()).add(preset_id)

    def providers(self, ref):
        folder = canonical_folder(ref.directory)
        found = self.by_path.get((folder, ref.path)) or self.by_name.get((folder, ref.path.rsplit("/", 1)[-1]))
        return sorted(found or ())


def check(refs, roots=None, index=None):
    """Each ref as a dict with `installed` and, when missing, the presets that provide it."""
    roots = roots or model_roots()
    index = index or PresetIndex()
    checked = []
    for ref in refs:
        installed = not ref.unsafe and roots.locate(ref) is not None
        checked.append(
            {
                "name": ref.name,
                "directory": ref.directory,
                "path": ref.path,
                "nodes": list(ref.nodes),
                "url": ref.url,
                "hash": ref.hash,
                "installed": installed,
                "inactive": ref.inactive,
                "unsafe": ref.unsafe,
                "presets": [] if installed else index.providers(ref),
            }
        )
    return checked


def summary(checked):
    """A workflow can run when every model its active nodes use is installed."""
    missing = [m for m in checked if not m["installed"]]
    blocking = [m for m in missing if not m["inactive"]]
    return {"compatible": not blocking, "can_generate": not blocking, "missing_count": len(blocking), "missing_models": missing}


def template_report(template, roots=None, index=None):
    checked = check([as_ref(r) for r in template.models.all()], roots, index)
    report = summary(checked)
    if template.compatible != report["compatible"] or template.missing_count != report["missing_count"]:
        Template.objects.filter(pk=template.pk).update(
            compatible=report["compatible"], missing_count=report["missing_count"]
        )
    installed = {(m["directory"], m["path"]) for m in checked if m["installed"]}
    for reference in template.models.all():
        if reference.installed != ((reference.directory, reference.path) in installed):
            ModelReference.objects.filter(pk=reference.pk).update(installed=not reference.installed)
    return {
        "id": template.pk,
        "name": template.name,
        "path": template.path,
        "format": template.format or None,
        "error": template.error or None,
        "warnings": template.warnings,
        "models_total": len(checked),
        **report,
    }


def all_reports():
    roots, index = model_roots(), PresetIndex()
    return [template_report(t, roots, index) for t in Template.objects.prefetch_related("models")]


def choose_presets(missing):
    """Fewest presets that provide the missing models: greedily, the one covering most, then smallest."""
    wanted = {(m["directory"], m["path"]): set(m["presets"]) for m in missing if m["presets"]}
    sizes = dict(Preset.objects.filter(pk__in=set().union(*wanted.values())).values_list("pk", "approx_download_bytes"))
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


def install_missing(missing, user=None):
    """Queue the presets that bring the missing models (one job per preset, never a duplicate)."""
    from downloads.queue import install

    queued, already = [], []
    for preset_id in choose_presets(missing):
        job, created = install(Preset.objects.get(pk=preset_id), user=user)
        (queued if created else already).append(preset_id)
    unavailable = [
        {"name": m["name"], "directory": m["directory"], "url": m["url"]} for m in missing if not m["presets"]
    ]
    return {"queued": queued, "already_queued": already, "not_in_catalogue": unavailable}
