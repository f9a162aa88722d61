"""API tokens: how scripts authenticate (`Authorization: Bearer <token>`), instead of a session."""

import hashlib
import secrets

from django.conf import settings
from django.db import models


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

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name):
        """Create a token; the plain value is returned once and never stored."""
        token = "pst_" + secrets.token_urlsafe(32)
        cls.objects.create(user=user, name=name, digest=token_digest(token), prefix=token[:8])
        return token
