from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.login import LoginForm
from disk.views import storage_page, uninstall_preset
from downloads.curation import add_from_urls
from downloads.pages import models_page, preset_page
from templates_scan import views as template_views

urlpatterns = [
    path("", models_page, name="models-page"),
    path("presets/<str:preset_id>/", preset_page, name="preset-detail"),
    path("templates/", template_views.templates_page, name="templates-page"),
    path("templates/check", template_views.check_fragment, name="templates-check"),
    path("templates/rescan", template_views.rescan_page, name="templates-rescan"),
    path(
        "templates/<int:template_id>/install-missing", template_views.install_missing_fragment, name="templates-install"
    ),
    path("templates/<int:template_id>/card", template_views.template_card, name="templates-card"),
    path("storage/", storage_page, name="storage-page"),
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # before the admin's own URLs, which would take it for a preset's id
    path("admin/presets/preset/add-from-urls/", admin.site.admin_view(add_from_urls), name="preset-add-from-urls"),
    path("admin/", admin.site.urls),
    path("api/presets/<str:preset_id>/uninstall", uninstall_preset, name="preset-uninstall"),
    path("api/presets/", include("presets.urls")),  # first: "categories" and "refresh" are no preset ids
    path("api/presets/", include("downloads.urls")),
    path("api/workflows/", include("templates_scan.urls")),
    path("api/storage/", include("disk.urls")),
]
