"""Access rules of the JSON API: it answers 401/403 as JSON, never with a redirect to a login page
or Django's HTML CSRF page."""

from functools import wraps

from django.conf import settings
from django.http import JsonResponse
from django.views.csrf import csrf_failure as html_csrf_failure

LOGIN_REQUIRED = "log in, or send an API token as 'Authorization: Bearer <token>'"


def login_required_answer():
    return JsonResponse({"error": LOGIN_REQUIRED}, status=401)


def _guard(check, refusal, anonymous_allowed=lambda: False):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if anonymous_allowed():
                return view(request, *args, **kwargs)
            if not request.user.is_authenticated:
                return login_required_answer()
            if not check(request.user):
                return JsonResponse({"error": refusal}, status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# Queue actions: logged-in users, or anyone when ALLOW_ANONYMOUS_QUEUE_ACTIONS is on.
queue_action = _guard(lambda user: True, "", anonymous_allowed=lambda: settings.ALLOW_ANONYMOUS_QUEUE_ACTIONS)
# The admin's own rule for a refresh: staff (to reach the admin at all) who may change presets.
may_change_presets = _guard(
    lambda user: user.is_staff and user.has_perm("presets.change_preset"),
    "changing the catalogue needs staff status and the permission to change presets",
)

# Work on the server's own folders, such as rescanning the template folders.
staff_only = _guard(lambda user: user.is_staff, "this needs staff status")


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: under /api/, JSON saying what is missing; elsewhere Django's own page.

    An anonymous caller is told to log in, since no CSRF token would let it act anyway.
    """
    if not request.path.startswith("/api/"):
        return html_csrf_failure(request, reason)
    if not request.user.is_authenticated and not settings.ALLOW_ANONYMOUS_QUEUE_ACTIONS:
        return login_required_answer()
    return JsonResponse(
        {
            "error": f"CSRF check failed ({reason.rstrip('.')}): a browser sends the csrftoken cookie's value as the "
            "X-CSRFToken header; a script uses an API token instead"
        },
        status=403,
    )
