"""Download jobs: one per preset install, with a row per file, in strict FIFO order.

The job state lives here, not in django-q2's task table: the worker reads and writes these
rows, and pause/cancel requests reach the running download through them.
"""

import os
import socket
from datetime import timedelta
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


ACTIVE_STATES = (State.QUEUED, State.DOWNLOADING, State.PAUSED, State.RETRYING)


class DownloadJob(models.Model):
    preset = models.ForeignKey("presets.Preset", on_delete=models.CASCADE, related_name="download_jobs")
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED, db_index=True)
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

    class Meta:
        ordering = ["queued_at", "id"]
        constraints = [
            # The database itself refuses a second active job for a preset, whatever races.
            models.UniqueConstraint(
                fields=["preset"], condition=Q(state__in=ACTIVE_STATES), name="one_active_job_per_preset"
            )
        ]

    def __str__(self):
        return f"{self.preset_id} ({self.state})"

    def may_delete_partial(self, user):
        """Deleting a partial download throws away someone's progress: staff or the job's owner."""
        return user.is_staff or (user.is_authenticated and self.requested_by_id == user.pk)


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
