from django.contrib import admin

from accounts.login import AdminLoginForm
from accounts.models import ApiToken

# /admin/login/ counts failed logins as /login/ does.
admin.site.login_form = AdminLoginForm


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `manage.py create_api_token`; here they are listed and revoked.

    Revoking deletes the token: the script using it gets 401 at its next request. The expiry
    may be set or moved here; the token itself is never shown again.
    """

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "expired")
    list_filter = ("user",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "expires_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.display(boolean=True)
    def expired(self, token):
        return token.has_expired()

    def get_actions(self, request):
        """Only "Revoke", which says what deleting a token means, not Django's generic delete."""
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request, queryset):
        count, _ = queryset.delete()
        self.message_user(request, f"Revoked {count} token{'s' if count != 1 else ''}; scripts using them now get 401.")
