"""The project's URLs plus one API view that crashes, to see what a 500 under /api/ answers."""

from django.urls import path

from presetsite.urls import urlpatterns as project_urls


def crash(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/crash", crash), *project_urls]
