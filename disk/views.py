"""The storage page and its JSON (what the model disk holds), and uninstalling a preset."""

from django.http import JsonResponse
from django.views.decorators.http import require_POST

from accounts.auth import staff_only
from disk.uninstall import Refused, uninstall
from presets.models import Preset


@staff_only
def storage_json(request):
    return JsonResponse({})


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
