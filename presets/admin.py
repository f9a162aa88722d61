"""Catalogue curation in the Django admin: presets with their files, refresh and export."""

import logging

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from presets.catalogue import CatalogueError, dump_catalogue, tags_as_text, tags_from_text
from presets.models import (
    CatalogueSource,
    Category,
    Preset,
    PresetFile,
    delete_presets,
    disk_sizes,
    preset_is_installed,
    preset_rows,
)
from presets.refresh import RefreshError, catalogue_from_db, export_catalogue_text, refresh_from_url

log = logging.getLogger(__name__)


class TagsField(forms.CharField):
    """Tags typed as "lora, team" and shown the same way, stored as the list presets.yaml has."""

    def prepare_value(self, value):
        return tags_as_text(value) if isinstance(value, list) else value

    def to_python(self, value):
        return tags_from_text(super().to_python(value))


class PresetForm(forms.ModelForm):
    tags = TagsField(
        required=False,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="Separated by commas, e.g. lora, team",
    )

    class Meta:
        model = Preset
        fields = "__all__"  # noqa: DJ007 - the admin edits every field of a preset


class PresetFileForm(forms.ModelForm):
    """Narrower inputs, so that a preset's file rows fit a laptop's window."""

    class Meta:
        model = PresetFile
        fields = "__all__"  # noqa: DJ007 - and of its files
        widgets = {
            "position": forms.NumberInput(attrs={"style": "width: 4em"}),
            "path": forms.TextInput(attrs={"size": 22}),
            "url": forms.TextInput(attrs={"size": 22}),
            "size": forms.TextInput(attrs={"size": 6}),
            "exact_bytes": forms.NumberInput(attrs={"style": "width: 8em"}),
            "sha256": forms.TextInput(attrs={"size": 10}),
        }


class PresetFileInline(admin.TabularInline):
    model = PresetFile
    form = PresetFileForm
    extra = 0
    fields = ("position", "path", "url", "size", "exact_bytes", "sha256", "optional")
    ordering = ("position",)


class InstalledFilter(admin.SimpleListFilter):
    title = "installed"
    parameter_name = "installed"

    def lookups(self, request, model_admin):
        return [("yes", "Installed"), ("no", "Not installed")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        rows = preset_rows(queryset)
        sizes = disk_sizes(f["path"] for row in rows for f in row["files"])
        wanted = self.value() == "yes"
        return queryset.filter(pk__in=[row["id"] for row in rows if preset_is_installed(row["files"], sizes) == wanted])


class RetiredFilter(admin.SimpleListFilter):
    title = "retired"
    parameter_name = "retired"

    def lookups(self, request, model_admin):
        return [("yes", "Retired"), ("no", "Live")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(retired_at__isnull=self.value() == "no")
        return queryset


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    form = PresetForm
    change_list_template = "admin/presets/preset/change_list.html"
    list_display = ("id", "name", "category", "size", "source", "installed", "retired")  # type: a filter
    list_filter = ("category", "type", "source", InstalledFilter, RetiredFilter)
    search_fields = ("id", "name", "description", "use_case")
    readonly_fields = ("approx_download_bytes", "retired_at", "created_at", "updated_at")
    inlines = [PresetFileInline]
    actions = ["export_selected", "hand_back_to_upstream"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("files")

    def get_readonly_fields(self, request, obj=None):
        """The id is what jobs, workflows and URLs refer to: set once, never renamed in place."""
        return self.readonly_fields + (("id",) if obj else ())

    @admin.display(ordering="approx_download_bytes")
    def size(self, preset):
        return preset.download_size

    @admin.display(boolean=True)
    def installed(self, preset):
        return preset.is_installed()

    @admin.display(boolean=True, ordering="retired_at")
    def retired(self, preset):
        return preset.retired

    def delete_model(self, request, obj):
        delete_presets(Preset.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        delete_presets(queryset)

    def save_model(self, request, obj, form, change):
        """An admin's edit makes the preset locally curated, so a refresh won't undo it."""
        obj.source = Preset.LOCAL
        super().save_model(request, obj, form, change)

    @admin.action(description="Export selected presets as presets.yaml")
    def export_selected(self, request, queryset):
        catalogue = catalogue_from_db()
        wanted = set(queryset.values_list("pk", flat=True))
        catalogue["presets"] = {k: v for k, v in catalogue["presets"].items() if k in wanted}
        return _yaml_download(dump_catalogue(catalogue))

    @admin.action(description="Let the upstream catalogue manage selected presets again")
    def hand_back_to_upstream(self, request, queryset):
        count = queryset.update(source=Preset.UPSTREAM)
        self.message_user(request, f"{count} presets will follow the upstream catalogue from the next refresh.")

    def get_urls(self):
        return [
            path("refresh/", self.admin_site.admin_view(self.refresh_view), name="presets_preset_refresh"),
            path("export/", self.admin_site.admin_view(self.export_view), name="presets_preset_export"),
            *super().get_urls(),
        ]

    def refresh_view(self, request):
        return require_POST(self._refresh)(request)

    def _refresh(self, request):
        if not self.has_change_permission(request):
            return HttpResponse("Not allowed", status=403)
        try:
            result = refresh_from_url()
        except CatalogueError as exc:
            self.message_user(
                request, "The new catalogue is invalid; nothing changed: " + "; ".join(exc.errors), messages.ERROR
            )
        except RefreshError as exc:
            self.message_user(request, f"Refresh failed; nothing changed: {exc}", messages.ERROR)
        else:
            log.info("catalogue refreshed by %s: %s", request.user, result.summary())
            self.message_user(request, f"Catalogue refreshed: {result.summary()}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:presets_preset_changelist"))

    def export_view(self, request):
        if not self.has_view_permission(request):
            return HttpResponse("Not allowed", status=403)
        return _yaml_download(export_catalogue_text())

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "catalogue_source": CatalogueSource.current()}
        return super().changelist_view(request, extra_context)


def _yaml_download(text):
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="presets.yaml"'
    return response


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "description", "position")


@admin.register(CatalogueSource)
class CatalogueSourceAdmin(admin.ModelAdmin):
    list_display = ("url", "version", "etag", "refreshed_at", "checked_at")
    readonly_fields = ("url", "version", "etag", "metadata", "refreshed_at", "checked_at")

    def has_add_permission(self, request):
        return False
