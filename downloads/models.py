"""Download jobs: one per preset install, with a row per file, in strict FIFO order.

The job state lives here, not in django-q2's task table: the worker reads and writes these
rows, and pause/cancel requests reach the running download through them.
"""

import os
import socket
from datetime import timedelta
from enum import nonmember
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone


class State(models.TextChoices):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    # Groups of states, written here only (nonmember: lists, not states of their own).
    # A job holds its place in the queue, and its preset, while active.
    ACTIVE = nonmember((QUEUED, DOWNLOADING, PAUSED, RETRYING))
    # The worker has it: it is the one download under way.
    RUNNING = nonmember((DOWNLOADING, RETRYING))
    FINISHED = nonmember((COMPLETED, FAILED, CANCELLED))
    # What a cancel applies to: an active job, or a failed one (cancelling dismisses the failure).
    CANCELLABLE = nonmember((QUEUED, DOWNLOADING, PAUSED, RETRYING, FAILED))


class Kind(models.TextChoices):
    """What a job does with the preset's files: download them, or check those on disk against
    their sha256. Both go through the one queue, so a check never competes with a download."""

    INSTALL = "install"
    VERIFY = "verify"


class DownloadJobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=State.ACTIVE)

    def running(self):
        return self.filter(state__in=State.RUNNING)

    def finished(self):
        return self.filter(state__in=State.FINISHED)

    def requeue_running(self):
        """Put the running jobs among these, and their running files, back at the head of the
        queue (the worker stopped or died under them); a .part resumes where it was left.
        Returns how many jobs went back."""
        JobFile.objects.filter(job__in=self, state__in=State.RUNNING).update(state=State.QUEUED, speed=0)
        return self.running().update(state=State.QUEUED, speed=0, updated_at=timezone.now())


class DownloadJob(models.Model):
    preset = models.ForeignKey("presets.Preset", on_delete=models.CASCADE, related_name="download_jobs")
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.INSTALL)
    force = models.BooleanField(default=False)
    keep_partial = models.BooleanField(default=True, help_text="On cancel, keep the .part files for later")
    queued_at = models.DateTimeField(default=timezone.now, help_text="FIFO order; a retried job goes to the back")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    speed = models.FloatField(default=0, help_text="Bytes per second")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DownloadJobQuerySet.as_manager()

    class Meta:
        ordering = ["queued_at", "id"]
        constraints = [
            # The database itself refuses a second active job for a preset, whatever races.
            models.UniqueConstraint(
                fields=["preset"], condition=Q(state__in=State.ACTIVE), name="one_active_job_per_preset"
            )
        ]

    def __str__(self):
        return f"{self.preset_id} ({self.state})"

    def transition(self, allowed, to, **fields):
        """Move to state `to`, setting `fields`, if the job is in one of the `allowed` states.

        One conditional UPDATE, so a change another process makes at the same moment (a pause
        landing as the worker finishes a file, two clicks on cancel) is never overwritten: one
        of them applies, the other finds the state moved on. Returns whether this one applied;
        the instance is refreshed either way.
        """
        applied = DownloadJob.objects.filter(pk=self.pk, state__in=allowed).update(
            state=to, updated_at=timezone.now(), **fields
        )
        self.refresh_from_db()
        return bool(applied)

    def finish(self, state, error=""):
        """End a running job, completed or failed; a pause or cancel that landed meanwhile stands."""
        return self.transition(State.RUNNING, state, error=error, finished_at=timezone.now(), speed=0)

    def to_dict(self):
        """The job for the API and the browsers: whole-job bytes, and the file being downloaded."""
        files = list(self.files.all())
        current = next((f for f in files if f.state in State.RUNNING), None)
        return {
            "job_id": self.pk,
            "preset_id": self.preset_id,
            "preset_name": self.preset.name,
            "kind": self.kind,
            "status": self.state,
            **file_progress(
                current.path if current else None,
                current and current.bytes_done,
                current and current.bytes_total,
                current.connections if current else 0,
            ),
            "attempt": current.attempts if current else None,
            "files_done": sum(1 for f in files if f.state == State.COMPLETED),
            "files_total": len(files),
            **job_progress(self.bytes_done, self.bytes_total, self.speed),
            "error": self.error or None,
            "queued_at": self.queued_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }

    def may_delete_partial(self, user):
        """Deleting a partial download throws away someone's progress: staff or the job's owner."""
        return user.is_staff or (user.is_authenticated and self.requested_by_id == user.pk)


def job_progress(done, total, speed):
    """Whole-job figures, as the queue panel's progress bar shows them."""
    return {
        "downloaded": done,
        "total": total,
        "progress": min(100.0, round(100 * done / total, 1)) if total else 0,
        "speed": speed,
        "eta": max(0, round((total - done) / speed)) if total and speed else None,
    }


def file_progress(path, done, total, connections):
    """The figures of the file being downloaded, and how many connections it comes over."""
    return {
        "file": path,
        "file_downloaded": done,
        "file_total": total,
        "file_progress": round(100 * done / total, 1) if total else 0,
        "connections": connections,
    }


class JobFile(models.Model):
    """A file of the job, copied from the preset when the job was created.

    The copy is what lets a catalogue refresh change a preset while its download runs:
    the job finishes the file list it started with.
    """

    job = models.ForeignKey(DownloadJob, on_delete=models.CASCADE, related_name="files")
    position = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    url = models.CharField(max_length=2000)
    sha256 = models.CharField(max_length=64, blank=True)
    exact_bytes = models.BigIntegerField(null=True, blank=True)
    approx_bytes = models.BigIntegerField(null=True, blank=True, help_text="Upstream's estimate, until the server says")
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    speed = models.FloatField(default=0)
    connections = models.PositiveSmallIntegerField(default=0, help_text="Connections in use at the last progress")
    error = models.TextField(blank=True)
    skipped = models.BooleanField(default=False, help_text="Already on disk when the job was created")
    verified_sha256 = models.CharField(max_length=64, blank=True, help_text="Hash of the bytes written")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]

    def __str__(self):
        return self.path


class WorkerLease(models.Model):
    """Which download worker holds this database's queue: there must be exactly one.

    Crash recovery requeues every job marked downloading when a worker starts, so a second
    cluster (a second `start`, an orphan left by a killed one) would take over the first one's
    download and both would write the same .part. The cluster takes this lease when it starts
    and renews it while it runs; it is free again when the holder stops, when its process is
    gone (same host), or when it has not been renewed for TTL (a holder on another host).
    """

    TTL = timedelta(seconds=30)
    RENEW_EVERY = 10  # seconds

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)  # one row: one queue
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    # The cluster's processes share a process group: a worker orphaned by a killed parent
    # still holds the queue while any of them runs.
    pgid = models.IntegerField()
    started_at = models.DateTimeField()
    renewed_at = models.DateTimeField()

    def __str__(self):
        return f"pid {self.pid} on {self.host}"

    @staticmethod
    def me():
        return {"host": socket.gethostname(), "pid": os.getpid(), "pgid": os.getpgrp()}

    @classmethod
    def holder(cls):
        """The lease of a worker that still runs, or None."""
        lease = cls.objects.filter(pk=1).first()
        return lease if lease and lease.is_held() else None

    @classmethod
    def acquire(cls):
        """Take the lease, or raise LeaseHeld naming the worker that has it."""
        now = timezone.now()
        try:
            with transaction.atomic():
                lease = cls.objects.select_for_update().filter(pk=1).first()
                if lease and lease.is_held() and not lease.is_mine():
                    raise LeaseHeld(lease)
                cls.objects.update_or_create(pk=1, defaults={**cls.me(), "started_at": now, "renewed_at": now})
        except IntegrityError:  # another worker inserted it between our read and our write
            raise LeaseHeld(cls.objects.get(pk=1)) from None

    @classmethod
    def renew(cls):
        """Still ours? False when another worker took it (we were silent past TTL)."""
        return bool(cls.objects.filter(pk=1, **cls.me()).update(renewed_at=timezone.now()))

    @classmethod
    def release(cls):
        cls.objects.filter(pk=1, **cls.me()).delete()

    def is_mine(self):
        return self.host == socket.gethostname() and self.pid == os.getpid()

    def is_held(self):
        if timezone.now() - self.renewed_at > self.TTL:
            return False
        return self.host != socket.gethostname() or process_group_runs(self.pgid)

    def describe(self):
        return (
            f"another download worker holds this database's queue: pid {self.pid} "
            f"(process group {self.pgid}) on {self.host}, "
            f"started {self.started_at:%Y-%m-%d %H:%M:%S} UTC, last seen "
            f"{(timezone.now() - self.renewed_at).total_seconds():.0f} s ago. Stop it first (only one "
            f"`manage.py qcluster` may run per database)."
        )


def process_group_runs(pgid):
    """Whether a process of the group still runs. A killed worker's processes stay zombies
    until whoever adopted them reaps them, which some container inits never do: they don't count."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(group) == pgid and state not in ("Z", "X"):
            return True
    return False


class LeaseHeld(Exception):
    def __init__(self, lease):
        super().__init__(lease.describe())
        self.lease = lease
