"""Pages for end users (the admin is for curators)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def models_page(request):
    """Cards and queue are filled in by the page itself from the JSON API and the live socket."""
    return render(request, "presets/models.html")
