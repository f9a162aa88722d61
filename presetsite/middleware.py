"""Site-wide HTTP policy of the project: JSON errors under /api/, the Content-Security-Policy header,
and clear answers when SQLite is locked or the model folders' configuration is broken."""

import logging

from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from storage import ConfigError

log = logging.getLogger(__name__)


def database_is_busy(error):
    """SQLite's answer when another process held the write lock past the busy timeout."""
    return isinstance(error, OperationalError) and any(word in str(error) for word in ("locked", "busy"))


class DatabaseBusyMiddleware(MiddlewareMixin):
    """Answer 503 with Retry-After, not a bare 500, when the database stayed locked.

    Under SQLite a long write elsewhere (a backup, a bulk admin change) can hold the lock past
    SQLITE_BUSY_TIMEOUT. Nothing was changed by the refused request, and trying again works.
    """

    def process_exception(self, request, exception):
        if not database_is_busy(exception):
            return None
        log.warning("%s %s refused: %s", request.method, request.path, exception)
        response = JsonResponse(
            {"error": "the database is busy; nothing was changed, try again in a moment"}, status=503
        )
        response["Retry-After"] = "2"
        return response


class ModelPathsBrokenMiddleware(MiddlewareMixin):
    """Answer 503, not a bare 500, when extra_model_paths.yaml became unreadable while the app ran
    (`start` refuses a broken one: presets.checks). The file's path and error go to the log only:
    the server's folders are nobody else's business."""

    MESSAGE = "the server's extra_model_paths.yaml cannot be read; an administrator must fix it"

    def process_exception(self, request, exception):
        if not isinstance(exception, ConfigError):
            return None
        log.error("%s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            return JsonResponse({"error": self.MESSAGE}, status=503)
        return HttpResponse(self.MESSAGE + ".\n", status=503, content_type="text/plain; charset=utf-8")


# Said instead of an HTML error page under /api/, by status.
API_ERRORS = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    413: "request too large",
    500: "internal server error; the server's log has the details",
}


class ApiErrorsAsJsonMiddleware:
    """Under /api/, an error Django answers with an HTML page becomes JSON with the same status:
    a path no view serves (404), a wrong method (405), a request Django refused (400), a crash (500).

    The views' own errors are JSON already and pass through untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            not request.path.startswith("/api/")
            or response.status_code < 400
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        if response.status_code == 405:
            error = f"{request.method} is not allowed here; use {response.get('Allow') or 'another method'}"
        else:
            error = API_ERRORS.get(response.status_code, response.reason_phrase.lower())
        answer = JsonResponse({"error": error}, status=response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                answer[header] = response[header]
        return answer


class ContentSecurityPolicyMiddleware:
    """Send settings.CONTENT_SECURITY_POLICY with every response that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
