"""The catalogue's JSON API: what the models page and scripts read."""

import logging
import os

from django.conf import settings
from django.db.models import Count, Max
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from downloads.engine import part_path
from presets.catalogue import CatalogueError
from presets.models import Category, Preset, disk_sizes, file_is_installed, preset_is_installed, preset_rows
from presets.refresh import RefreshError, refresh_from_url
from presetsite.auth import may_change_presets
from presetsite.params import query_flag

log = logging.getLogger(__name__)


def latest_jobs(user, preset_ids=None):
    """Each preset's most recent download job, as {preset_id: {job_id, state, error,
    partial_bytes, can_delete_partial}}: what the page needs to offer cancel, keep or delete."""
    from downloads.models import DownloadJob, JobFile, State

    jobs = DownloadJob.objects.all()
    if preset_ids is not None:
        jobs = jobs.filter(preset_id__in=preset_ids)
    newest = jobs.values("preset_id").annotate(newest=Max("id")).values("newest")
    latest = list(DownloadJob.objects.filter(id__in=newest).only("preset_id", "state", "error", "requested_by"))
    unfinished = JobFile.objects.filter(job__in=[j for j in latest if j.state != State.COMPLETED]).exclude(
        state=State.COMPLETED
    )
    partial = {}
    for job_id, path in unfinished.values_list("job_id", "path"):
        partial[job_id] = partial.get(job_id, 0) + part_size(path)
    return {
        job.preset_id: {
            "job_id": job.pk,
            "state": job.state,
            "error": job.error or None,
            "partial_bytes": partial.get(job.pk, 0),
            "can_delete_partial": job.may_delete_partial(user),
        }
        for job in latest
    }


def part_size(path):
    """Bytes in the .part of a model file: what cancelling with keep_partial=false would delete."""
    try:
        return os.stat(part_path(settings.MODEL_BASE_PATH / path)).st_size
    except OSError:
        return 0


def preset_status(installed, job):
    """What the models page shows: an active job's state (retrying included), else installed,
    failed or available."""
    from downloads.models import ACTIVE_STATES

    if job and job["state"] in ACTIVE_STATES:
        return job["state"]
    if installed:
        return "installed"
    return "failed" if job and job["state"] == "failed" else "available"


def preset_json(row, sizes, job=None):
    files = [
        {
            "path": f["path"],
            "url": f["url"],
            "size": f["size"],
            "size_bytes": f["approx_bytes"],
            "exact_bytes": f["exact_bytes"],
            "sha256": f["sha256"] or None,
            "optional": bool(f["optional"]),
            "installed": file_is_installed(f, sizes),
        }
        for f in row["files"]
    ]
    installed = preset_is_installed(row["files"], sizes)
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "use_case": row["use_case"],
        "category": row["category_id"],
        "type": row["type"],
        "tags": row["tags"],
        "download_size": row["download_size"],
        "download_size_bytes": row["approx_download_bytes"],
        "source": row["source"],
        "retired": row["retired_at"] is not None,
        "installed": installed,
        "status": preset_status(installed, job),
        "job": job,
        "files": files,
    }


def _matches(row, needle):
    haystack = (row["id"], row["name"], row["description"], row["use_case"], *row["tags"])
    return any(needle in text.lower() for text in haystack)


@require_GET
def preset_list(request):
    presets = Preset.objects.all()
    if category := request.GET.get("category"):
        presets = presets.filter(category_id=category)
    if type_ := request.GET.get("type"):
        presets = presets.filter(type=type_)
    rows = preset_rows(presets)
    if search := request.GET.get("search", "").strip().lower():
        rows = [row for row in rows if _matches(row, search)]

    sizes = disk_sizes(f["path"] for row in rows for f in row["files"])
    jobs = latest_jobs(request.user)
    items = [preset_json(row, sizes, jobs.get(row["id"])) for row in rows]
    installed = query_flag(request, "installed")
    if installed is not None:
        items = [item for item in items if item["installed"] == installed]
    return JsonResponse({"presets": items, "total": len(items)})


@require_GET
def preset_detail(request, preset_id):
    rows = preset_rows(Preset.objects.filter(pk=preset_id))
    if not rows:
        return JsonResponse({"error": f"preset {preset_id} not found"}, status=404)
    sizes = disk_sizes(f["path"] for f in rows[0]["files"])
    return JsonResponse(preset_json(rows[0], sizes, latest_jobs(request.user, [preset_id]).get(preset_id)))


@require_GET
def category_list(request):
    categories = [
        {"name": c.name, "description": c.description, "type": c.type, "count": c.count}
        for c in Category.objects.annotate(count=Count("presets"))
    ]
    return JsonResponse({"categories": categories, "total": len(categories)})


@require_POST
@may_change_presets
def refresh(request):
    """Refresh from the configured URL only: a caller never chooses what the server fetches."""
    try:
        result = refresh_from_url()
    except CatalogueError as exc:
        return JsonResponse(
            {"error": "the new catalogue is invalid; nothing changed", "errors": exc.errors}, status=422
        )
    except RefreshError as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    log.info("catalogue refreshed by %s: %s", request.user, result.summary())
    return JsonResponse({"status": "ok", "summary": result.summary(), **result.as_dict()})
