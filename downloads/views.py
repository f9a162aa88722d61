"""The queue's JSON API: install, pause, resume, cancel, retry, and the queue's state."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from downloads import queue
from presets.models import Preset
from presetsite.auth import queue_action
from presetsite.params import query_flag


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
    except queue.QueueError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    if job is None:
        return JsonResponse({"preset_id": preset.pk, "job_id": None, "status": "installed", "created": False})
    return _answer(job, status=202 if created else 200, created=created)


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
