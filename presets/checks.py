"""System checks of the catalogue's surroundings, run by every manage.py command (`start` too)."""

from django.core.checks import Error, register

from presets.models import model_roots
from storage import ConfigError


@register()
def extra_model_paths_readable(app_configs, **kwargs):
    """A broken extra_model_paths.yaml stops the app at start with its own message, instead of
    answering 503 on every page that asks whether a model is installed."""
    try:
        model_roots()
    except ConfigError as error:
        return [Error(str(error), hint="Fix the file, or unset COMFYUI_EXTRA_MODEL_PATHS.", id="presets.E001")]
    return []
