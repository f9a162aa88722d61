from django.apps import AppConfig


class TemplatesScanConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "templates_scan"
