"""Download jobs: one per preset install, with a row per file, in strict FIFO order.

The job state lives here, not in django-q2's task table: the worker reads and writes these
rows, and pause/cancel requests reach the running download through them.
"""

from django.conf import settings
from django.db import models
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


class Event(models.Model):
    """Outbox of browser events in the embedded configuration (see downloads.events)."""

    KEEP = 10_000

    type = models.CharField(max_length=40)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    @classmethod
    def last_id(cls):
        return cls.objects.order_by("-id").values_list("id", flat=True).first() or 0

    @classmethod
    def after(cls, event_id):
        return list(cls.objects.filter(id__gt=event_id).order_by("id").values_list("id", "payload")[:1000])

    @classmethod
    def prune(cls):
        """Keep the newest KEEP events: enough for any web process that is a little behind."""
        cls.objects.filter(id__lte=cls.last_id() - cls.KEEP).delete()
