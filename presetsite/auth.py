"""Access rules of the JSON API: it answers 401/403 as JSON, never with a redirect to a login page."""

from functools import wraps

from django.conf import settings
from django.http import JsonResponse


def _guard(check, anonymous_allowed=lambda: False):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if anonymous_allowed():
                return view(request, *args, **kwargs)
            if not request.user.is_authenticated:
                return JsonResponse({"error": "authentication required"}, status=401)
            if not check(request.user):
                return JsonResponse({"error": "staff only"}, status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# Queue actions: logged-in users, or anyone when ALLOW_ANONYMOUS_QUEUE_ACTIONS is on.
queue_action = _guard(lambda user: True, anonymous_allowed=lambda: settings.ALLOW_ANONYMOUS_QUEUE_ACTIONS)
staff_required = _guard(lambda user: user.is_staff)
