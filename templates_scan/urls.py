from django.urls import path

from templates_scan import views

urlpatterns = [
    path("templates", views.template_list, name="template-list"),
    path("rescan", views.rescan, name="template-rescan"),
    path("templates/<int:template_id>/missing-models", views.missing_models, name="template-missing"),
    path("templates/<int:template_id>/install-missing", views.install_missing, name="template-install-missing"),
    path("check", views.check, name="workflow-check"),
]
