"""Download jobs in the admin: who asked for what, when, and how it ended; queue actions.

Jobs are made by installing a preset, never typed in here, and their state changes only
through the queue's rules (downloads.queue), so every field is read-only.
"""

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from django_q.models import Failure, OrmQ, Schedule, Success

from downloads import links, queue
from downloads.models import DownloadJob, JobFile, State, job_progress
from presets import admin as presets_admin
from presets.models import Preset, PresetFile
from presets.sizes import human_size


def hide_django_q_pages():
    """django-q2's own pages (its tasks, schedules, failures and broker queue) are the worker's
    plumbing: every download is one `run_queue` task there, and what people manage and read is
    *Download jobs*. Shown beside it they only confuse. Called once every admin module is loaded."""
    for model in (Schedule, Success, Failure, OrmQ):
        if admin.site.is_registered(model):  # OrmQ only with the database as broker, not Redis
            admin.site.unregister(model)


class JobFileInline(admin.TabularInline):
    model = JobFile
    fields = ("position", "path", "status", "attempts", "progress", "skipped", "error", "verified_sha256")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("job")

    @admin.display(description="state")
    def status(self, file):
        """A file the job never got to says so once the job is over, rather than "Queued"."""
        if file.job.state in State.ACTIVE or file.state in (State.COMPLETED, State.FAILED):
            return file.get_state_display()
        return f"Not downloaded (job {file.job.get_state_display().lower()})"

    @admin.display(description="bytes")
    def progress(self, file):
        done, total = human_size(file.bytes_done), file.bytes_total or file.exact_bytes
        if total:
            return f"{done} / {human_size(total)}"
        if file.approx_bytes:
            return f"{done} / about {human_size(file.approx_bytes)}"
        return f"{done} (size unknown)"


@admin.register(DownloadJob)
class DownloadJobAdmin(admin.ModelAdmin):
    list_display = ("preset", "kind", "state", "progress", "requested_by", "queued_at", "finished_at", "short_error")
    list_filter = ("kind", "state")
    search_fields = ("preset__id", "preset__name", "requested_by__username")
    date_hierarchy = "queued_at"
    list_select_related = ("preset", "requested_by")
    inlines = [JobFileInline]
    actions = ["pause", "resume", "cancel", "retry", "delete_finished"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in DownloadJob._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        """Only finished jobs may go, through `delete_finished` or the job's own page."""
        return super().has_delete_permission(request, obj) and (obj is None or obj.state not in State.ACTIVE)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would delete active jobs too
        return actions

    def delete_model(self, request, obj):
        queue.delete_finished_jobs(DownloadJob.objects.filter(pk=obj.pk))

    @admin.display(description="progress")
    def progress(self, job):
        percent = job_progress(job.bytes_done, job.bytes_total, 0)["progress"]
        return f"{percent}% of {human_size(job.bytes_total)}" if job.bytes_total else f"{percent}%"

    @admin.display(description="error")
    def short_error(self, job):
        return job.error[:80] + ("…" if len(job.error) > 80 else "")

    def _apply(self, request, jobs, action, done):
        changed, refused = 0, []
        for job in jobs:
            try:
                action(job)
                changed += 1
            except queue.QueueError as error:
                refused.append(str(error))
        if changed:
            self.message_user(request, f"{changed} job(s) {done}.")
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    @admin.action(description="Pause selected downloads", permissions=["change"])
    def pause(self, request, queryset):
        self._apply(request, queryset, queue.pause, "paused")

    @admin.action(description="Resume selected downloads", permissions=["change"])
    def resume(self, request, queryset):
        self._apply(request, queryset, queue.resume, "resumed")

    @admin.action(description="Cancel selected downloads (keep their .part files)", permissions=["change"])
    def cancel(self, request, queryset):
        self._apply(request, queryset, queue.cancel, "cancelled")

    @admin.action(description="Retry selected failed or cancelled downloads", permissions=["change"])
    def retry(self, request, queryset):
        self._apply(request, queryset, queue.retry, "queued again")

    @admin.action(description="Delete selected finished jobs and their leftover .part files", permissions=["delete"])
    def delete_finished(self, request, queryset):
        deleted = queue.delete_finished_jobs(queryset)
        self.message_user(request, f"{deleted} finished job(s) deleted; active ones are kept.")


class LinkHealthFilter(admin.SimpleListFilter):
    """Presets by what their files' sources answered at the last link check."""

    title = "link health"
    parameter_name = "links"

    def lookups(self, request, model_admin):
        return [
            (PresetFile.LINK_NOT_FOUND, "A file is gone (404)"),
            (PresetFile.LINK_NEEDS_TOKEN, "A file needs a token"),
            ("problem", "Any problem"),
            (PresetFile.LINK_OK, "All links work"),
            ("unchecked", "Not checked yet"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value in (PresetFile.LINK_NOT_FOUND, PresetFile.LINK_NEEDS_TOKEN):
            return queryset.filter(files__link_status=value).distinct()
        bad = PresetFile.objects.exclude(link_status__in=("", PresetFile.LINK_OK)).values("preset_id")
        if value == "problem":
            return queryset.filter(pk__in=bad)
        if value == PresetFile.LINK_OK:
            return queryset.filter(files__isnull=False).exclude(files__link_status="").exclude(pk__in=bad).distinct()
        if value == "unchecked":
            return queryset.filter(files__link_status="").distinct()
        return queryset


class PresetAdmin(presets_admin.PresetAdmin):
    """The catalogue's admin with what needs the network (presets may not import downloads):
    enrich from the source, and link health."""

    change_list_template = "admin/presets/preset/change_list_sources.html"
    list_filter = (*presets_admin.PresetAdmin.list_filter, LinkHealthFilter)
    actions = [*presets_admin.PresetAdmin.actions, "enrich_selected", "check_links_selected"]

    @admin.action(description="Fill in exact sizes and sha256 of selected presets from their sources")
    def enrich_selected(self, request, queryset):
        self._report_enrich(request, links.enrich(PresetFile.objects.filter(preset__in=queryset)))

    @admin.action(description="Check the links of selected presets now")
    def check_links_selected(self, request, queryset):
        found = links.check_files(PresetFile.objects.filter(preset__in=queryset))
        broken = [probe for probe in found if not probe.ok]
        self.message_user(request, f"{len(found)} link(s) checked, {len(broken)} with a problem.")
        for probe in broken:
            self.message_user(request, f"{probe.url}: {probe.message}", messages.WARNING)

    def get_urls(self):
        return [
            path("enrich/", self.admin_site.admin_view(self.enrich_view), name="presets_preset_enrich"),
            path("check-links/", self.admin_site.admin_view(self.check_links_view), name="presets_preset_check_links"),
            *super().get_urls(),
        ]

    def enrich_view(self, request):
        return require_POST(self._enrich_all)(request)

    def _enrich_all(self, request):
        if not self.has_change_permission(request):
            return HttpResponse("Not allowed", status=403)
        self._report_enrich(request, links.enrich(PresetFile.objects.all()))
        return HttpResponseRedirect(reverse("admin:presets_preset_changelist"))

    def check_links_view(self, request):
        return require_POST(self._check_all_links)(request)

    def _check_all_links(self, request):
        """Queued like the daily check, in batches: checking hundreds of links takes a while."""
        if not self.has_change_permission(request):
            return HttpResponse("Not allowed", status=403)
        from django_q.tasks import async_task

        async_task("downloads.links.check_links")
        self.message_user(request, "Checking every link in the background; filter by link health to see the results.")
        return HttpResponseRedirect(reverse("admin:presets_preset_changelist"))

    def _report_enrich(self, request, report):
        level = messages.WARNING if report.failed else messages.SUCCESS
        self.message_user(request, f"Enriched from the sources: {report.summary()}.", level)
        for line in report.failed:
            self.message_user(request, line, messages.WARNING)
        for line in report.unknown:
            self.message_user(request, line, messages.INFO)


admin.site.unregister(Preset)
admin.site.register(Preset, PresetAdmin)
