from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/presets/", include("downloads.urls")),
    path("api/presets/", include("presets.urls")),
]
