"""The download queue's rules: what install, pause, resume, cancel and retry do to the job rows.

Views, the CLI and the admin call these; the worker (downloads.worker) carries them out. The
state is only ever changed through `DownloadJob.transition` (a conditional update), so a
pause that lands while the worker finishes a file cannot be overwritten by either side.
"""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from downloads.models import DownloadJob, JobFile, Kind, State
from presets.models import disk_sizes, file_is_installed
from presets.sizes import human_size
from realtime.events import QUEUE_UPDATED, publish
from storage import free_space, new_download_path, partial_bytes, remove_partial

log = logging.getLogger(__name__)


INSTALL_ATTEMPTS = 3


class QueueError(Exception):
    """The request does not fit the job's state (e.g. resuming a job that is not paused)."""


class NoRoom(QueueError):
    """What a preset still has to download does not fit in the model disk's free space."""


def install(preset, user=None, force=False):
    """Queue a preset; return (job, created). An already active job is returned as it is, and
    (None, False) means every file is already on disk: there is nothing to download.

    The job copies the preset's file list, so a catalogue refresh cannot change a download
    under way. Files already on disk are skipped unless `force`.
    """
    existing = active_job(preset)
    if existing:
        return _unless_verifying(existing), False
    files = list(preset.files.all())
    sizes = disk_sizes(f.path for f in files)
    if not force and all(file_is_installed(_row(file), sizes) for file in files):
        return None, False
    refuse_unless_it_fits(preset, [_row(file) for file in files], sizes, force)
    for _ in range(INSTALL_ATTEMPTS):
        try:
            with transaction.atomic():
                job = DownloadJob.objects.create(
                    preset=preset, force=force, requested_by=user if user and user.is_authenticated else None
                )
                job_files = JobFile.objects.bulk_create(
                    [
                        _job_file(job, position, file, skip=not force and file_is_installed(_row(file), sizes))
                        for position, file in enumerate(files)
                    ]
                )
                job.bytes_total = sum(f.exact_bytes or f.approx_bytes or 0 for f in job_files if not f.skipped)
                job.save(update_fields=["bytes_total"])
            break
        except IntegrityError:
            # Someone queued the same preset between our check and our insert: theirs stands,
            # unless it was cancelled meanwhile too; then we try again.
            existing = active_job(preset)
            if existing:
                return _unless_verifying(existing), False
    else:
        raise QueueError(f"{preset.pk} is being queued and cancelled by others right now; try again")
    transaction.on_commit(kick_worker)
    transaction.on_commit(publish_queue)
    return job, True


def _unless_verifying(job):
    if job.kind == Kind.VERIFY:
        raise QueueError(f"{job.preset.name} is being verified; install it once that is done")
    return job


def verify(preset, user=None):
    """Queue a check of the preset's files on disk against their sha256; return (job, created).

    An active verify of the preset is returned as it is; any other active job refuses it
    (QueueError): one job per preset, and a download checks what it writes anyway. Files on
    disk are checked whether or not they count as installed (a corrupt one may be good again);
    those without a known sha256 are kept as skipped rows, reported as not checkable.
    """
    existing = active_job(preset)
    if existing:
        return _verifying(existing), False
    files = list(preset.files.all())
    sizes = disk_sizes(f.path for f in files)
    on_disk = [f for f in files if f.path in sizes]
    if not on_disk:
        raise QueueError(f"no file of {preset.name} is on disk to verify")
    try:
        with transaction.atomic():
            job = DownloadJob.objects.create(
                preset=preset, kind=Kind.VERIFY, requested_by=user if user and user.is_authenticated else None
            )
            rows = [_job_file(job, position, file, skip=not file.sha256) for position, file in enumerate(on_disk)]
            for row in rows:
                row.bytes_total = sizes[row.path]
            JobFile.objects.bulk_create(rows)
            job.bytes_total = sum(row.bytes_total for row in rows if not row.skipped)
            job.save(update_fields=["bytes_total"])
    except IntegrityError:
        return _verifying(active_job(preset)), False  # queued by someone else meanwhile
    transaction.on_commit(kick_worker)
    transaction.on_commit(publish_queue)
    return job, True


def _verifying(job):
    if job is None or job.kind != Kind.VERIFY:
        what = f"its download is {STATE_WORDS[job.state]}" if job else "its queue place is changing"
        raise QueueError(f"{what}; verify it once that is done")
    return job


def _row(file):
    return {"path": file.path, "exact_bytes": file.exact_bytes, "approx_bytes": file.approx_bytes}


def refuse_unless_it_fits(preset, files, sizes, force=False):
    """Raise NoRoom when the preset's download would not fit, rather than let its job fail later."""
    room = Room()
    needed = room.needs(files, sizes, force)
    if not room.fits(needed):
        raise NoRoom(
            f"{preset.name} does not fit on the model disk: it needs {human_size(needed)}, "
            f"{human_size(max(room.free, 0))} free (keeping DOWNLOAD_DISK_RESERVE of "
            f"{human_size(settings.DOWNLOAD_DISK_RESERVE)} free)"
        )


class Room:
    """The room downloads have on the model disk now, for any number of presets: the free space
    of the model root's file system less DOWNLOAD_DISK_RESERVE, and what .part files hold."""

    def __init__(self):
        self.free = free_space(settings.MODEL_BASE_PATH, settings.DOWNLOAD_DISK_RESERVE)
        # Only a path a job left unfinished can have a .part (it goes with the last job that may
        # resume it): a handful of look-ups, not one per file of the catalogue.
        unfinished = JobFile.objects.exclude(state=State.COMPLETED).values_list("path", flat=True).distinct()
        self.partial = {path: part_size(path) for path in unfinished}

    def needs(self, files, sizes, force=False):
        """What installing these files (rows with path, exact_bytes, approx_bytes) would still
        write: each file not installed (every file when forced) at its exact size, else its
        approximate one, less what its .part already holds. A file of unknown size counts nothing."""
        needed = 0
        for file in files:
            if force or not file_is_installed(file, sizes):
                size = file["exact_bytes"] or file["approx_bytes"] or 0
                needed += max(0, size - self.partial.get(file["path"], 0))
        return needed

    def fits(self, needed):
        return needed <= self.free


def part_size(path):
    """Bytes in the .part of a model file: what cancelling with keep_partial=false would delete."""
    return partial_bytes(new_download_path(settings.MODEL_BASE_PATH, path))


def _job_file(job, position, file, skip):
    return JobFile(
        job=job,
        position=position,
        path=file.path,
        url=file.url,
        sha256=file.sha256,
        exact_bytes=file.exact_bytes,
        approx_bytes=file.approx_bytes,
        state=State.COMPLETED if skip else State.QUEUED,
        skipped=skip,
    )


def active_job(preset):
    return DownloadJob.objects.active().filter(preset=preset).first()


def latest_job(preset):
    return DownloadJob.objects.filter(preset=preset).order_by("-queued_at", "-id").first()


def cancellable_job(preset):
    """The job a cancel applies to: the active one, else a failed one (cancelling it dismisses
    the failure, and the preset shows as available again)."""
    job = active_job(preset) or latest_job(preset)
    return job if job and job.state in State.CANCELLABLE else None


def pause(job):
    allowed = (State.QUEUED, *State.RUNNING)
    _transition(job, allowed, State.PAUSED, "only a queued or running download can be paused")


def resume(job):
    """Back into the queue at its old place: a paused job was started before the ones behind it."""
    _transition(job, (State.PAUSED,), State.QUEUED, "only a paused download can be resumed")
    transaction.on_commit(kick_worker)


def cancel(job, keep_partial=True):
    """Cancel (or dismiss a failed job); the worker stops within a second and, unless
    keep_partial, deletes the .part files. A kept .part is resumed by a retry or a new install.

    The worker is kicked too: the cancelled job may be one it can no longer run (its task
    died), and the job behind it must not wait for the next install.
    """
    was = job.state
    _transition(
        job,
        State.CANCELLABLE,
        State.CANCELLED,
        "only a queued, running, paused or failed download can be cancelled",
        keep_partial=keep_partial,
        finished_at=timezone.now(),
    )
    if not keep_partial and was not in State.RUNNING:
        delete_partials(job)
    transaction.on_commit(kick_worker)


def retry(job):
    """Put a failed or cancelled job back at the end of the queue; its .part files are resumed."""
    already_active = QueueError(f"{job.preset.name} is already in the queue")
    if active_job(job.preset):
        raise already_active
    try:
        with transaction.atomic():
            _transition(
                job,
                (State.FAILED, State.CANCELLED),
                State.QUEUED,
                "only a failed or cancelled download can be retried",
                error="",
                queued_at=timezone.now(),
                finished_at=None,
            )
            job.files.exclude(state=State.COMPLETED).update(state=State.QUEUED, error="", attempts=0)
    except IntegrityError:
        # An install or another retry of the preset won the race: the database keeps one.
        job.refresh_from_db()
        raise already_active from None
    transaction.on_commit(kick_worker)


STATE_WORDS = {
    State.QUEUED: "queued",
    State.DOWNLOADING: "downloading",
    State.PAUSED: "paused",
    State.RETRYING: "waiting to retry",
    State.COMPLETED: "installed",
    State.FAILED: "failed",
    State.CANCELLED: "cancelled",
}


def _transition(job, allowed, new_state, rule, **fields):
    """`job.transition`, refused in words when the job is not in an `allowed` state, `rule`
    saying which downloads the change applies to."""
    if not job.transition(allowed, new_state, **fields):
        name, now = job.preset.name, STATE_WORDS[job.state]
        if job.state == new_state:
            raise QueueError(f"{name} is already {now}")
        raise QueueError(f"{name} is {now}; {rule}")
    transaction.on_commit(publish_queue)


def delete_partials(job):
    if job.kind == Kind.VERIFY:
        return  # it wrote nothing; a .part at its paths is an install's
    for path in job.files.exclude(state=State.COMPLETED).values_list("path", flat=True):
        _delete_partial(path)


def _delete_partial(path):
    """Delete the .part of a model path and its version record. Whatever cannot be deleted (a
    folder someone made there) is left, and logged: a cancel or a clean-up never fails over it."""
    dest = new_download_path(settings.MODEL_BASE_PATH, path)
    try:
        remove_partial(dest)
    except OSError as error:
        log.warning("left the partial download of %s in place: %s", dest, error.strerror or error)


def delete_abandoned_partials():
    """Delete the .part files of downloads cancelled without keep_partial whose worker died
    before it could delete them (it deletes them once it has stopped)."""
    abandoned = JobFile.objects.exclude(state=State.COMPLETED).filter(
        job__state=State.CANCELLED, job__keep_partial=False, job__kind=Kind.INSTALL
    )
    delete_unclaimed_partials(abandoned.values_list("path", flat=True))


def delete_finished_jobs(jobs):
    """Delete finished jobs (from the admin's history) and the .part files only they held.

    Active jobs are left alone: the worker may be running one, and each holds its place in
    the queue. Returns how many jobs were deleted.
    """
    finished = jobs.finished()
    paths = list(
        JobFile.objects.filter(job__in=finished, job__kind=Kind.INSTALL)
        .exclude(state=State.COMPLETED)
        .values_list("path", flat=True)
    )
    _, deleted = finished.delete()
    delete_unclaimed_partials(paths)
    return deleted.get(DownloadJob._meta.label, 0)


def delete_unclaimed_partials(paths):
    """Delete the .part of each path, unless a job that may still resume it holds the same path."""
    resumable = JobFile.objects.exclude(state=State.COMPLETED).filter(
        # an active or failed job, or one cancelled keeping its .part files
        Q(job__state__in=State.CANCELLABLE) | Q(job__state=State.CANCELLED, job__keep_partial=True)
    )
    for path in set(paths) - set(resumable.values_list("path", flat=True)):
        _delete_partial(path)


def queue_snapshot():
    """{current, queue, active_downloads}: what the queue panel and GET queue/status show."""
    jobs = list(DownloadJob.objects.active().select_related("preset").prefetch_related("files"))
    current = next((j for j in jobs if j.state in State.RUNNING), None)
    waiting = [j for j in jobs if j is not current]
    return {
        "current": current.to_dict() if current else None,
        "queue": [j.to_dict() for j in waiting],
        "active_downloads": 1 if current else 0,
    }


def publish_queue():
    """Show every browser the queue as it is now, after a change to it."""
    publish(QUEUE_UPDATED, **queue_snapshot())


def kick_worker():
    """Ask the cluster to work through the queue; extra kicks find it empty and return at once."""
    from django_q.tasks import async_task

    async_task("downloads.worker.run_queue")
