"""The storage page and its JSON (what the model disk holds), clean-up and uninstalling a preset."""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import staff_only
from disk.cleanup import clean_up
from disk.survey import Survey
from disk.uninstall import Refused, uninstall
from presets.models import Preset


@require_GET
@staff_only
def storage_json(request):
    return JsonResponse(Survey().report())


@require_POST
@staff_only
def uninstall_preset(request, preset_id):
    """POST /api/presets/<id>/uninstall: delete the preset's files no other installed preset needs."""
    preset = Preset.objects.filter(pk=preset_id).first()
    if preset is None:
        return JsonResponse({"error": f"preset {preset_id} not found"}, status=404)
    try:
        return JsonResponse(uninstall(preset, request.user))
    except Refused as refusal:
        return JsonResponse({"error": str(refusal)}, status=409)


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
