"""The catalogue's own JSON API: its categories, and a refresh from upstream. The presets
themselves, as their users see them (with their downloads), are downloads.views'."""

import logging

from django.db.models import Count
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import may_change_presets
from presets.catalogue import CatalogueError
from presets.models import Category
from presets.refresh import RefreshError, refresh_from_url

log = logging.getLogger(__name__)


@require_GET
def category_list(request):
    categories = [
        {"name": c.name, "description": c.description, "type": c.type, "count": c.count}
        for c in Category.objects.annotate(count=Count("presets"))
    ]
    return JsonResponse({"categories": categories, "total": len(categories)})


@require_POST
@may_change_presets
def refresh(request):
    """Refresh from the configured URL only: a caller never chooses what the server fetches."""
    try:
        result = refresh_from_url()
    except CatalogueError as exc:
        return JsonResponse(
            {"error": "the new catalogue is invalid; nothing changed", "errors": exc.errors}, status=422
        )
    except RefreshError as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    log.info("catalogue refreshed by %s: %s", request.user, result.summary())
    return JsonResponse({"status": "ok", "summary": result.summary(), **result.as_dict()})
