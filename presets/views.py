"""The catalogue's JSON API: what the models page and scripts read."""

from functools import wraps

from django.db.models import Count
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from presets.catalogue import CatalogueError
from presets.models import Category, Preset, disk_sizes
from presets.refresh import RefreshError, refresh_from_url


def staff_required(view):
    """401 for anonymous callers and 403 for non-staff, as JSON (an API never redirects to a login page)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "authentication required"}, status=401)
        if not request.user.is_staff:
            return JsonResponse({"error": "staff only"}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def preset_json(preset, sizes):
    files = list(preset.files.all())
    return {
        "id": preset.id,
        "name": preset.name,
        "description": preset.description,
        "use_case": preset.use_case,
        "category": preset.category_id,
        "type": preset.type,
        "tags": preset.tags,
        "download_size": preset.download_size,
        "download_size_bytes": preset.approx_download_bytes,
        "source": preset.source,
        "retired": preset.retired,
        "installed": preset.is_installed(sizes),
        "files": [
            {
                "path": f.path,
                "url": f.url,
                "size": f.size,
                "size_bytes": f.approx_bytes,
                "exact_bytes": f.exact_bytes,
                "sha256": f.sha256 or None,
                "optional": bool(f.optional),
                "installed": f.is_installed(sizes),
            }
            for f in files
        ],
    }


def _matches(preset, needle):
    haystack = (preset.id, preset.name, preset.description, preset.use_case, *preset.tags)
    return any(needle in text.lower() for text in haystack)


def _flag(value):
    if value is None or value == "":
        return None
    return value.lower() in ("1", "true", "yes")


@require_GET
def preset_list(request):
    presets = Preset.objects.prefetch_related("files")
    if category := request.GET.get("category"):
        presets = presets.filter(category_id=category)
    if type_ := request.GET.get("type"):
        presets = presets.filter(type=type_)
    presets = list(presets)
    if search := request.GET.get("search", "").strip().lower():
        presets = [p for p in presets if _matches(p, search)]

    sizes = disk_sizes([f.path for p in presets for f in p.files.all()])
    items = [preset_json(p, sizes) for p in presets]
    installed = _flag(request.GET.get("installed"))
    if installed is not None:
        items = [item for item in items if item["installed"] == installed]
    return JsonResponse({"presets": items, "total": len(items)})


@require_GET
def preset_detail(request, preset_id):
    preset = Preset.objects.prefetch_related("files").filter(pk=preset_id).first()
    if preset is None:
        return JsonResponse({"error": f"preset {preset_id} not found"}, status=404)
    sizes = disk_sizes([f.path for f in preset.files.all()])
    return JsonResponse(preset_json(preset, sizes))


@require_GET
def category_list(request):
    categories = [
        {"name": c.name, "description": c.description, "type": c.type, "count": c.count}
        for c in Category.objects.annotate(count=Count("presets"))
    ]
    return JsonResponse({"categories": categories, "total": len(categories)})


@require_POST
@staff_required
def refresh(request):
    """Refresh from the configured URL only: a caller never chooses what the server fetches."""
    try:
        result = refresh_from_url()
    except CatalogueError as exc:
        return JsonResponse({"error": "the new catalogue is invalid; nothing changed", "errors": exc.errors}, status=422)
    except RefreshError as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    return JsonResponse({"status": "ok", "summary": result.summary(), **result.as_dict()})
