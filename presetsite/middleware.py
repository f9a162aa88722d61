"""Token authentication for scripts, next to the browser's session authentication."""

from django.http import JsonResponse
from django.utils import timezone

from presetsite.models import ApiToken, token_digest


class TokenAuthenticationMiddleware:
    """`Authorization: Bearer <token>` authenticates a request as the token's user.

    A header is not sent by a browser on its own, so such requests cannot be forged across
    sites: CSRF checks do not apply to them. A wrong token is refused outright rather than
    treated as anonymous, so a script learns at once that its token is bad.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = ApiToken.objects.select_related("user").filter(digest=token_digest(header[7:].strip())).first()
            if token is None or not token.user.is_active:
                return JsonResponse({"error": "invalid API token"}, status=401)
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
            request.user = token.user
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)
