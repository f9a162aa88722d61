"""The JSON API of what users download: install, pause, resume, cancel, retry, the queue's state,
and the presets as the models page shows them (on disk or not, and how their last download went)."""

from django.db.models import Max
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import queue_action
from accounts.params import query_flag
from downloads import queue
from downloads.models import DownloadJob, JobFile, Kind, State
from downloads.queue import part_size
from presets.models import Preset, PresetFile, disk_sizes, file_is_installed, preset_is_installed, preset_rows


def _preset_or_404(preset_id):
    preset = Preset.objects.filter(pk=preset_id).first()
    if preset is None:
        return None, JsonResponse({"error": f"preset {preset_id} not found"}, status=404)
    return preset, None


def _forbidden(error):
    return JsonResponse({"error": error}, status=403)


def _answer(job, status=200, **extra):
    return JsonResponse({"preset_id": job.preset_id, "job_id": job.pk, "status": job.state, **extra}, status=status)


@require_POST
@queue_action
def install(request, preset_id):
    preset, missing = _preset_or_404(preset_id)
    if missing:
        return missing
    if preset.retired:
        return JsonResponse({"error": f"preset {preset_id} was retired from the catalogue"}, status=409)
    force = query_flag(request, "force", False)
    if force and not request.user.is_staff:
        # It downloads again files other users have and use: the shared disk is staff's to manage.
        return _forbidden("only staff can force a reinstall of files already on disk")
    try:
        job, created = queue.install(preset, user=request.user, force=force)
    except queue.NoRoom as exc:
        return JsonResponse({"error": str(exc)}, status=507)
    except queue.QueueError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    if job is None:
        return JsonResponse({"preset_id": preset.pk, "job_id": None, "status": "installed", "created": False})
    return _answer(job, status=202 if created else 200, created=created)


@require_POST
@queue_action
def verify(request, preset_id):
    """Queue a check of the preset's files on disk against their sha256, answered like install."""
    preset, missing = _preset_or_404(preset_id)
    if missing:
        return missing
    try:
        job, created = queue.verify(preset, user=request.user)
    except queue.QueueError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    return _answer(job, status=202 if created else 200, created=created, kind=job.kind)


def _may_delete_partials(user, job, keep_partial):
    """Deleting a .part throws away someone's download: only its owner or staff may."""
    if keep_partial or job.may_delete_partial(user):
        return None
    return _forbidden("only staff or the user who asked for this download can delete its partial files")


def _job_action(action, find_job=queue.active_job, refuse=None, **options):
    """A view applying `action` to the preset's job; `refuse(user, job, **options)` may answer
    a refusal instead."""

    @require_POST
    @queue_action
    def view(request, preset_id):
        preset, missing = _preset_or_404(preset_id)
        if missing:
            return missing
        job = find_job(preset)
        if job is None:
            return JsonResponse({"error": f"no download of {preset_id} to {action.__name__}"}, status=404)
        chosen = {name: query_flag(request, name, default) for name, default in options.items()}
        refusal = refuse and refuse(request.user, job, **chosen)
        if refusal:
            return refusal
        try:
            action(job, **chosen)
        except queue.QueueError as exc:
            return JsonResponse({"error": str(exc), "status": job.state}, status=409)
        return _answer(job)

    view.__name__ = action.__name__
    return view


pause = _job_action(queue.pause)
resume = _job_action(queue.resume)
cancel = _job_action(queue.cancel, find_job=queue.cancellable_job, refuse=_may_delete_partials, keep_partial=True)
retry = _job_action(queue.retry, find_job=queue.latest_job)


@require_GET
def queue_status(request):
    return JsonResponse(queue.queue_snapshot())


def latest_jobs(user, preset_ids=None):
    """Each preset's most recent download job, as {preset_id: {job_id, state, error,
    partial_bytes, can_delete_partial}}: what the page needs to offer cancel, keep or delete."""
    jobs = DownloadJob.objects.all()
    if preset_ids is not None:
        jobs = jobs.filter(preset_id__in=preset_ids)
    newest = jobs.values("preset_id").annotate(newest=Max("id")).values("newest")
    latest = list(DownloadJob.objects.filter(id__in=newest).only("preset_id", "kind", "state", "error", "requested_by"))
    downloads = [j for j in latest if j.state != State.COMPLETED and j.kind == Kind.INSTALL]
    unfinished = JobFile.objects.filter(job__in=downloads).exclude(state=State.COMPLETED)
    partial = {}
    for job_id, path in unfinished.values_list("job_id", "path"):
        partial[job_id] = partial.get(job_id, 0) + part_size(path)
    return {
        job.preset_id: {
            "job_id": job.pk,
            "kind": job.kind,
            "state": job.state,
            "error": job.error or None,
            "partial_bytes": partial.get(job.pk, 0),
            "can_delete_partial": job.may_delete_partial(user),
        }
        for job in latest
    }


def preset_status(installed, job, corrupt=False):
    """What the models page shows: an active job's state (retrying included), else installed,
    failed, corrupt (a verify found a file not matching its sha256) or available."""
    if job and job["state"] in State.ACTIVE:
        return job["state"]
    if installed:
        return "installed"
    if job and job["state"] == "failed":
        return "failed"
    return "corrupt" if corrupt else "available"


def preset_json(row, sizes, room, job=None):
    """A preset as the models page shows it; `room`: a queue.Room, whether it fits."""
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
            "corrupt": f["path"] in sizes.corrupt,
            "link_status": f["link_status"] or None,
        }
        for f in row["files"]
    ]
    installed = preset_is_installed(row["files"], sizes)
    needs = room.needs(row["files"], sizes)
    corrupt = any(f["corrupt"] for f in files)
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
        "status": preset_status(installed, job, corrupt),
        "needs_bytes": needs,
        "fits": room.fits(needs),
        "job": job,
        "link_problem": link_problem(row["files"], sizes),
        "files": files,
    }


_LINK_PROBLEMS = (PresetFile.LINK_NOT_FOUND, PresetFile.LINK_NEEDS_TOKEN)


def link_problem(files, sizes):
    """Why installing would fail before anyone tries, from the last link check: a file missing
    from disk that is gone from its source (404) or needs a token that is not set."""
    for file in files:
        if file["link_status"] in _LINK_PROBLEMS and not file_is_installed(file, sizes):
            return f"{file['path'].rsplit('/', 1)[-1]}: {file['link_message']}"  # "…: needs HF_TOKEN"
    return None


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
    room = queue.Room()
    items = [preset_json(row, sizes, room, jobs.get(row["id"])) for row in rows]
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
    job = latest_jobs(request.user, [preset_id]).get(preset_id)
    return JsonResponse(preset_json(rows[0], sizes, queue.Room(), job))
