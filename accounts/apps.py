from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """API tokens, authentication, the login throttle and request parameters: the ground layer,
    which imports nothing from the apps above it."""

    name = "accounts"
