"""API tokens (how scripts authenticate: `Authorization: Bearer <token>`, instead of a session),
and the failed-login counters that throttle password guessing."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def token_digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """Only the token's sha256 is stored: a leaked database does not leak working tokens."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly sync script'")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text="First characters, to recognise it")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the token never expires")

    class Meta:
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name, expires_at=None):
        """Create a token; the plain value is returned once and never stored."""
        token = "pst_" + secrets.token_urlsafe(32)
        cls.objects.create(user=user, name=name, digest=token_digest(token), prefix=token[:8], expires_at=expires_at)
        return token

    def has_expired(self):
        return self.expires_at is not None and self.expires_at <= timezone.now()


class LoginFailures(models.Model):
    """Login attempts counted against one account or one client address (see accounts.login).

    A database row, not a per-process cache entry: every web process sees the same count, in
    the embedded configuration (SQLite) as in scale-out, and the count goes up with its row locked,
    so parallel guesses cannot slip past the limit between a read and a write.
    """

    key = models.CharField(max_length=255, unique=True, help_text="'account:<username>' or 'address:<ip>'")
    count = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "login failures"

    def __str__(self):
        return f"{self.key}: {self.count}"
