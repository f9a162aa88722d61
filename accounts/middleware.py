"""Token authentication for scripts: `Authorization: Bearer <token>` under /api/."""

import logging
from datetime import timedelta

from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import timezone

from accounts.models import ApiToken, token_digest

log = logging.getLogger(__name__)


class TokenAuthenticationMiddleware:
    """`Authorization: Bearer <token>` authenticates a request to the JSON API as the token's user.

    A header is not sent by a browser on its own, so such requests cannot be forged across
    sites: CSRF checks do not apply to them. That is why a token counts only under /api/: the
    admin and the pages are for browsers, which log in, and there the header is ignored (a
    proxy in front may send one of its own). A wrong or expired token is refused outright
    rather than treated as anonymous, so a script learns at once that its token is bad.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        header = request.headers.get("Authorization", "")
        if request.path.startswith("/api/") and header.startswith("Bearer "):
            token = ApiToken.objects.select_related("user").filter(digest=token_digest(header[7:].strip())).first()
            if token is None or not token.user.is_active:
                return _token_refused("invalid API token")
            if token.has_expired():
                return _token_refused("API token expired")
            _note_use(token)
            request.user = token.user
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)


def _token_refused(message):
    response = JsonResponse({"error": message}, status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


def _note_use(token):
    """Record when a token was last used, at most once a minute: a script polling the queue
    should not turn every read into a write, and a busy database must not refuse the read."""
    now = timezone.now()
    if token.last_used_at and now - token.last_used_at < timedelta(minutes=1):
        return
    try:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    except DatabaseError as error:
        log.warning("could not record the use of API token %s: %s", token.pk, error)
