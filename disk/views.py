"""The storage page and its JSON: what the model disk holds."""

from django.http import JsonResponse

from accounts.auth import staff_only


@staff_only
def storage_json(request):
    return JsonResponse({})
