"""The storage page and its JSON: what the model disk holds, and clean-up."""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import staff_only
from disk.cleanup import clean_up
from disk.survey import Survey


@require_GET
@staff_only
def storage_json(request):
    return JsonResponse(Survey().report())


@require_POST
@staff_only
def cleanup(request):
    """Body `{"paths": [...], "confirm": false}`: the preview; with `"confirm": true`, the deletion."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JsonResponse({"error": 'the body must be JSON: {"paths": [...], "confirm": false}'}, status=400)
    paths, confirm = body.get("paths"), body.get("confirm", False)
    if not isinstance(paths, list) or not isinstance(confirm, bool):
        return JsonResponse({"error": 'give "paths", a list of paths, and "confirm", true or false'}, status=400)
    return JsonResponse(clean_up(paths, confirm=confirm, user=request.user))


@require_GET
@login_required
def storage_page(request):
    """Filled in by the page itself from the storage JSON, and again whenever the disk changes."""
    if not request.user.is_staff:
        raise PermissionDenied
    return render(request, "disk/storage.html")
