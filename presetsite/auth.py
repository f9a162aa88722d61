"""Access rules of the JSON API: it answers 401/403 as JSON, never with a redirect to a login page."""

from functools import wraps

from django.http import JsonResponse


def _guard(check):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return JsonResponse({"error": "authentication required"}, status=401)
            if not check(request.user):
                return JsonResponse({"error": "staff only"}, status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


login_required = _guard(lambda user: True)
staff_required = _guard(lambda user: user.is_staff)
