"""The audit of the model disk in the admin, read-only, and the presets' Uninstall action."""

from django.contrib import admin, messages

from disk.models import StorageAction
from disk.uninstall import Refused, uninstall
from presets.models import Preset
from presets.sizes import human_size


@admin.register(StorageAction)
class StorageActionAdmin(admin.ModelAdmin):
    """What was done to the model disk, by whom: written by the actions themselves, never here."""

    list_display = ("at", "kind", "user", "preset_id", "size", "result")
    list_filter = ("kind", ("user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("preset_id", "paths", "result")
    date_hierarchy = "at"
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="bytes", ordering="bytes")
    def size(self, action):
        return human_size(action.bytes)


@admin.action(description="Uninstall selected presets (delete their files no other installed preset needs)")
def uninstall_selected(modeladmin, request, queryset):
    for preset in queryset:
        try:
            answer = uninstall(preset, request.user)
        except Refused as refusal:
            modeladmin.message_user(request, str(refusal), messages.ERROR)
            continue
        kept = f"; {len(answer['kept_shared'])} shared files kept" if answer["kept_shared"] else ""
        modeladmin.message_user(
            request,
            f"{preset.pk}: {len(answer['deleted'])} files deleted, {human_size(answer['freed_bytes'])} freed{kept}",
            messages.WARNING if answer["refused"] else messages.SUCCESS,
        )
        for refused in answer["refused"]:
            modeladmin.message_user(request, f"{refused['path']} left: {refused['reason']}", messages.WARNING)


def add_uninstall_action():
    """The presets' admin gains Uninstall from here: presets (a lower layer) knows nothing of
    disk. Called once every admin module is loaded."""
    preset_admin = admin.site.get_model_admin(Preset)
    preset_admin.actions = [*preset_admin.actions, uninstall_selected]
