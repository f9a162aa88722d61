"""The download worker: runs inside django-q2's single worker process and works the queue FIFO.

`run_queue` is the only task ever enqueued. It claims the oldest queued job, downloads its
files one after the other with the engine, and repeats until the queue is empty; a second
`run_queue` (one per install) finds nothing to claim and returns. Pause and cancel reach a
running download through the job row, which `JobControl` polls.
"""

import logging
import os
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Sum
from django.dispatch import receiver
from django.utils import timezone
from django_q.signals import post_spawn

from downloads import engine
from downloads.models import DownloadJob, JobFile, Kind, State, file_progress, job_progress
from downloads.queue import delete_abandoned_partials, delete_partials, kick_worker, publish_queue
from downloads.signals import verify_finished
from downloads.sources import Sources
from presets.models import PresetFile, clear_corrupt, locate_file, mark_corrupt
from realtime.events import (
    DOWNLOAD_COMPLETE,
    DOWNLOAD_FAILED,
    DOWNLOAD_PROGRESS,
    DOWNLOAD_RETRYING,
    STORAGE_CHANGED,
    publish,
)
from storage import new_download_path, part_path, unsafe_path_reason

log = logging.getLogger(__name__)

# Errors that say "not now" (locked, busy, connection lost), unlike a bug such as an IntegrityError.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def run_queue():
    while not shutting_down.is_set():
        job = None
        try:
            job = claim_next_job()
            if job is None:
                return
            publish_queue()
            run_job(job)
            publish_queue()
        except DATABASE_UNAVAILABLE as error:
            # Typically SQLite locked past its busy timeout by another writer. Whatever the
            # job's row says now, the job must not be lost: once the database answers again it
            # goes back to the head of the queue and resumes (a file already renamed into
            # place is verified, not downloaded again).
            log.warning("database error while working the queue (%s); job %s will resume", error, job and job.pk)
            requeue_when_database_answers(job)


def requeue_when_database_answers(job, first_wait=1.0, longest_wait=30.0):
    wait = first_wait
    while not shutting_down.wait(wait):
        try:
            connection.close()  # a broken connection (PostgreSQL restarted) is replaced
            if job is not None:
                DownloadJob.objects.filter(pk=job.pk).requeue_running()
            return
        except DATABASE_UNAVAILABLE as error:
            log.warning("database still unavailable: %s", error)
            wait = min(wait * 2, longest_wait)


def claim_next_job():
    """The oldest queued job, marked downloading; None when the queue is empty or busy."""
    with transaction.atomic():
        if DownloadJob.objects.running().exists():
            return None
        queued = DownloadJob.objects.filter(state=State.QUEUED).select_related("preset")
        job = queued.order_by("queued_at", "id").first()
        if job is None:
            return None
        claimed = job.transition((State.QUEUED,), State.DOWNLOADING, started_at=job.started_at or timezone.now())
    return job if claimed else claim_next_job()


def run_job(job):
    verifying = job.kind == Kind.VERIFY
    log.info("%s %s (job %s)", "verifying" if verifying else "downloading", job.preset_id, job.pk)
    for file in job.files.exclude(state=State.COMPLETED).order_by("position"):
        outcome = verify_file(job, file) if verifying else run_file(job, file)
        if outcome != State.COMPLETED:
            return outcome
    if job.finish(State.COMPLETED):
        if verifying:
            verify_done(job)
        else:
            publish(DOWNLOAD_COMPLETE, preset_id=job.preset_id, job_id=job.pk)
            publish(STORAGE_CHANGED, reason="install", preset_id=job.preset_id)
    return State.COMPLETED


def file_spec(file):
    """The engine's spec for a job file, refusing a destination that a symbolic link would take
    out of the model root (the engine checks every host against DOWNLOAD_ALLOWED_HOSTS)."""
    root = settings.MODEL_BASE_PATH.resolve()
    dest = new_download_path(root, file.path)
    # Checked again: the job copied its paths from a catalogue validated by older rules, perhaps.
    problem = unsafe_path_reason(file.path, root)
    if problem:
        raise engine.DownloadError(f"{file.path}: the path {problem}", retryable=False)
    if not Path(os.path.realpath(dest.parent)).is_relative_to(root):
        raise engine.DownloadError(f"{file.path}: would be written outside the model root", retryable=False)
    part = part_path(dest)
    if part.is_symlink():
        part.unlink()  # a planted link must not make us append to whatever it points at
    return engine.FileSpec(
        url=file.url,
        dest=dest,
        expected_size=file.exact_bytes,
        sha256=file.sha256 or None,
        label=file.path,
        approx_size=file.approx_bytes,
    )


def run_file(job, file):
    JobFile.objects.filter(pk=file.pk).update(
        state=State.DOWNLOADING, started_at=timezone.now(), error="", connections=0
    )
    progress = ProgressRecorder(job, file)
    control = JobControl(job.pk)
    try:
        spec = file_spec(file)
        # A forced install downloads again whatever is on disk.
        result = (not job.force and engine.already_in_place(spec, control=control)) or engine.download(
            spec,
            control=control,
            on_progress=progress,
            on_retry=progress.retrying,
            policy=retry_policy(),
            options=engine_options(),
        )
    except engine.Stopped as stop:
        return stopped(job, file, stop)
    except engine.DownloadError as error:
        return fail_file(job, file, error.message)
    except OSError as error:
        # The engine reports the file system errors it expects; any other (a folder where the
        # .part goes, a name too long) must fail this file too, never leave the job running.
        where = f"cannot use {error.filename}: " if error.filename else ""
        return fail_file(job, file, f"{file.path}: {where}{error.strerror or error}")
    JobFile.objects.filter(pk=file.pk).update(
        state=State.COMPLETED,
        bytes_done=result.size,
        bytes_total=result.size,
        verified_sha256=result.sha256,
        finished_at=timezone.now(),
        speed=0,
    )
    progress.file_done(result.size)
    learn_from_source(job, file, result)
    clear_corrupt([file.path])  # verified as it was written (or found whole in place)
    return State.COMPLETED


MISSING = "missing"  # the error of a verified file that was deleted before its turn


def verify_file(job, file):
    """Hash a file of a verify job where ComfyUI finds it, with progress as a download's (one
    connection), and mark it corrupt, or clear its mark, by its sha256. Pause, cancel and a
    shutdown stop it as they stop a download; it starts again from the first byte."""
    JobFile.objects.filter(pk=file.pk).update(
        state=State.DOWNLOADING, started_at=timezone.now(), error="", connections=1
    )
    progress = ProgressRecorder(job, file)
    found = locate_file(file.path)
    try:
        if found is None:
            raise FileNotFoundError
        size, digest = engine.hash_file(
            found, control=JobControl(job.pk), on_progress=lambda done: progress(done, file.bytes_total, 1)
        )
    except engine.Stopped as stop:
        return stopped(job, file, stop)
    except FileNotFoundError:
        # Deleted since the job was queued: nothing to check, nor to mark.
        JobFile.objects.filter(pk=file.pk).update(
            state=State.COMPLETED, skipped=True, error=MISSING, finished_at=timezone.now(), speed=0
        )
        return State.COMPLETED
    except OSError as error:
        return fail_file(job, file, f"{file.path}: cannot read {found}: {error.strerror or error}")
    corrupt = digest != file.sha256.strip().lower()
    if corrupt:
        mark_corrupt(file.path, file.sha256, digest, size)
    else:
        clear_corrupt([file.path])
    JobFile.objects.filter(pk=file.pk).update(
        state=State.COMPLETED,
        bytes_done=size,
        bytes_total=size,
        verified_sha256=digest,
        error=f"corrupt: sha256 {digest}, expected {file.sha256}" if corrupt else "",
        finished_at=timezone.now(),
        speed=0,
    )
    progress.file_done(size)
    return State.COMPLETED


def verify_done(job):
    """Tell who listens what a verify found: the audit (disk, through verify_finished) and the
    open pages (storage_changed), in the words the audit keeps."""
    files = list(job.files.all())
    checked = [f for f in files if not f.skipped]
    corrupt = [f.path for f in checked if f.error]
    unknown = [f.path for f in files if f.skipped and f.error != MISSING]
    result = f"ok: {len(checked) - len(corrupt)} files; corrupt: {corrupt}; not checkable: {unknown}"
    missing = [f.path for f in files if f.error == MISSING]
    if missing:
        result += f"; missing: {missing}"
    paths, checked_bytes = [f.path for f in files], sum(f.bytes_done for f in checked)
    log.info("verified %s: %s", job.preset_id, result)
    verify_finished.send(sender=DownloadJob, job=job, paths=paths, bytes_checked=checked_bytes, result=result)
    publish(STORAGE_CHANGED, reason="verify", preset_id=job.preset_id, job_id=job.pk, result=result)


def stopped(job, file, stop):
    """A pause, cancel or shutdown took effect: the file waits in the queue again. Returns the
    job's state now."""
    JobFile.objects.filter(pk=file.pk).update(state=State.QUEUED, speed=0)
    DownloadJob.objects.filter(pk=job.pk).update(speed=0)
    if stop.reason == "shutdown":
        # The cluster is stopping: the job goes back to the head of the queue, and the next
        # start resumes it from its .part.
        job.transition(State.RUNNING, State.QUEUED)
    else:
        job.refresh_from_db()  # paused or cancelled: by whom, and keeping the .part files?
    if stop.reason == "cancel" and not job.keep_partial:
        delete_partials(job)
    log.info("%s stopped: %s", job.preset_id, stop.reason)
    return job.state


def learn_from_source(job, file, result):
    """The catalogue's file, while it is still the one downloaded (same path and URL), keeps the
    exact size and sha256 its source declared where the catalogue gave none."""
    if result.source_size is None and result.source_sha256 is None:
        return
    for preset_file in PresetFile.objects.filter(preset_id=job.preset_id, path=file.path, url=file.url):
        preset_file.learn_from_source(result.source_size, result.source_sha256)


def fail_file(job, file, message):
    """The file and its job fail with `message`; the worker goes on with the next job."""
    JobFile.objects.filter(pk=file.pk).update(state=State.FAILED, error=message, finished_at=timezone.now(), speed=0)
    job.finish(State.FAILED, error=message)
    publish(
        DOWNLOAD_FAILED,
        preset_id=job.preset_id,
        job_id=job.pk,
        file=file.path,
        error=message,
        retry_count=JobFile.objects.get(pk=file.pk).attempts,
    )
    log.warning("%s failed: %s", job.preset_id, message)
    return State.FAILED


class JobControl:
    """Tells the engine to stop when the job row no longer says it runs (read at most every 0.2 s)."""

    def __init__(self, job_id, interval=0.2):
        self.job_id = job_id
        self.interval = interval
        self.checked = 0.0
        self.reason = None

    def stop_requested(self):
        if shutting_down.is_set():
            return "shutdown"
        now = time.monotonic()
        if self.reason is None and now - self.checked >= self.interval:
            self.checked = now
            state = DownloadJob.objects.filter(pk=self.job_id).values_list("state", flat=True).first()
            if state in (State.CANCELLED, None):
                self.reason = "cancel"
            elif state not in State.RUNNING:
                # Paused, or paused and resumed again before we looked: either way stop, and
                # a job that is queued again is picked up first and resumes from its .part.
                self.reason = "pause"
        return self.reason


class ProgressRecorder:
    """Writes a file's progress to its job at most every DOWNLOAD_PROGRESS_INTERVAL seconds."""

    def __init__(self, job, file):
        self.job = job
        self.file = file
        self.interval = settings.DOWNLOAD_PROGRESS_INTERVAL
        self.done_before = (
            JobFile.objects.filter(job=job, state=State.COMPLETED, skipped=False).aggregate(n=Sum("bytes_done"))["n"]
            or 0
        )
        self.others_total = sum(
            f.bytes_total or f.exact_bytes or f.approx_bytes or 0
            for f in job.files.filter(skipped=False).exclude(pk=file.pk)
        )
        self.written_at = 0.0
        self.written = None
        self.connections = 0
        self.speed = SpeedMeter()
        self.after_retry = False

    def __call__(self, downloaded, total, connections=1):
        if self.after_retry:
            self.after_retry = False
            self.transferring_again()
        now = time.monotonic()
        self.speed.add(now, downloaded)
        self.connections = connections
        if now - self.written_at < self.interval and downloaded != total:
            return
        self.written_at = now
        self.write(downloaded, total)

    def write(self, downloaded, total):
        """Progress is worth a lot less than the download: when the database is locked the
        write is skipped (the download goes on), and the next one catches up."""
        try:
            self._write(downloaded, total)
        except DATABASE_UNAVAILABLE as error:
            log.warning("progress of %s not saved: %s", self.file.path, error)

    def _write(self, downloaded, total):
        file_total = total or self.file.exact_bytes or self.file.approx_bytes
        speed = self.speed.rate()
        job_done, job_total = self.done_before + downloaded, self.others_total + (file_total or 0)
        JobFile.objects.filter(pk=self.file.pk).update(
            bytes_done=downloaded, bytes_total=total, speed=speed, connections=self.connections
        )
        DownloadJob.objects.filter(pk=self.job.pk).update(
            bytes_done=job_done, bytes_total=job_total, speed=speed, updated_at=timezone.now()
        )
        publish(
            DOWNLOAD_PROGRESS,
            preset_id=self.job.preset_id,
            job_id=self.job.pk,
            **file_progress(self.file.path, downloaded, file_total, self.connections),
            **job_progress(job_done, job_total, speed),
        )
        self.written = (downloaded, total)  # only once saved: a skipped write is tried again

    def retrying(self, attempt, max_attempts, delay, message):
        log.info("%s; attempt %s of %s in %.1f s", message, attempt, max_attempts, delay)
        JobFile.objects.filter(pk=self.file.pk).update(state=State.RETRYING, attempts=attempt, error=message)
        self.job.transition((State.DOWNLOADING,), State.RETRYING)
        self.speed = SpeedMeter()
        self.after_retry = True
        publish(
            DOWNLOAD_RETRYING,
            preset_id=self.job.preset_id,
            job_id=self.job.pk,
            file=self.file.path,
            attempt=attempt,
            max=max_attempts,
            delay=delay,
            error=message,
        )
        publish_queue()

    def file_done(self, size):
        """The last event of a file says 100%, even from a server that sent no length."""
        if self.written != (size, size):
            self.write(size, size)

    def transferring_again(self):
        JobFile.objects.filter(pk=self.file.pk).update(state=State.DOWNLOADING)
        if self.job.transition((State.RETRYING,), State.DOWNLOADING):
            publish_queue()


class SpeedMeter:
    """Bytes per second over the last few seconds (a sliding window, not since the start)."""

    WINDOW = 5.0

    def __init__(self):
        self.samples = []

    def add(self, now, downloaded):
        self.samples.append((now, downloaded))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.WINDOW:
            self.samples.pop(0)

    def rate(self):
        if len(self.samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return max(0.0, (b1 - b0) / (t1 - t0)) if t1 > t0 else 0.0


def retry_policy():
    return engine.RetryPolicy(
        max_attempts=settings.DOWNLOAD_MAX_ATTEMPTS,
        backoff_initial=settings.DOWNLOAD_BACKOFF_INITIAL,
        backoff_max=settings.DOWNLOAD_BACKOFF_MAX,
    )


def engine_options():
    return engine.Options(
        sources=Sources.configured(settings.DOWNLOAD_TOKENS, settings.DOWNLOAD_ALLOWED_HOSTS),
        timeout=(settings.DOWNLOAD_CONNECT_TIMEOUT, settings.DOWNLOAD_READ_TIMEOUT),
        disk_reserve=settings.DOWNLOAD_DISK_RESERVE,
        connections=settings.DOWNLOAD_CONNECTIONS,
        huggingface_hosts=tuple(settings.HUGGINGFACE_HOSTS),
    )


def recover_interrupted_jobs():
    """Put jobs a dead worker left running back at the head of the queue, and kick the worker.

    There is one worker, so when it (re)starts nothing can be running: a job still marked
    downloading was interrupted (kill -9, power loss) and resumes from its .part files. A
    cancel that the dead worker never saw still gets its .part files deleted.
    """
    delete_abandoned_partials()
    recovered = DownloadJob.objects.requeue_running()
    if recovered:
        log.warning("resuming %s interrupted download job(s)", recovered)
    if recovered or DownloadJob.objects.filter(state=State.QUEUED).exists():
        kick_worker()


shutting_down = threading.Event()


@receiver(post_spawn)
def on_worker_spawn(sender, proc_name, **kwargs):
    """In the worker process: stop a download within a second on SIGINT, then recover.

    django-q2 stops a cluster by letting each worker finish its task, and its workers ignore
    SIGINT: a download of hours would hold a stop (Ctrl-C, `bin/start` ending) for hours.
    Ctrl-C reaches the whole process group, so the worker takes SIGINT as "shut down": the
    download stops, its job returns to the queue, and the task ends so the cluster can stop.
    """
    signal.signal(signal.SIGINT, shut_down)
    recover_interrupted_jobs()


def shut_down(signum, frame):
    """SIGINT in the worker. Further ones are ignored first: a second SIGINT (Ctrl-C pressed
    twice, or the cluster passing a stop on to its group) would run this handler again inside
    Event.set and wait for ever on the lock the first one holds."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shutting_down.set()
