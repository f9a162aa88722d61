"""The audit of what was done to the model disk: who deleted or checked what, when, and how much."""

from django.conf import settings
from django.db import models


class StorageAction(models.Model):
    class Kind(models.TextChoices):
        UNINSTALL = "uninstall"
        VERIFY = "verify"
        CLEANUP = "cleanup"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    preset_id = models.CharField(max_length=100, blank=True, help_text="The preset, if it was about one")
    paths = models.JSONField(default=list, help_text="The model files concerned")
    bytes = models.BigIntegerField(default=0, help_text="Freed (uninstall, clean-up) or checked (verify)")
    result = models.TextField(blank=True, help_text="What came of it, in words")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.kind} {self.preset_id or ''} at {self.at:%Y-%m-%d %H:%M}"

    @classmethod
    def record(cls, kind, user, paths, bytes=0, preset_id="", result=""):
        """Keep a line of the audit (user None: a management command or the worker)."""
        user = user if user is not None and user.is_authenticated else None
        return cls.objects.create(
            kind=kind, user=user, paths=list(paths), bytes=bytes, preset_id=preset_id, result=result
        )
