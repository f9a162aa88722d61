"""Workflow templates: the JSON API of the original plan, the templates page, and a one-off check."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required as login_required_page
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.auth import queue_action, staff_only
from templates_scan import library, upload
from templates_scan.models import Template
from templates_scan.scanner import WorkflowError, scan_workflow


@require_GET
def template_list(request):
    reports = library.all_reports()
    return JsonResponse({"templates": reports, "total": len(reports)})


@require_POST
@staff_only
def rescan(request):
    """Rescan the template folders now rather than at the next scheduled rescan."""
    return JsonResponse(library.scan_directories())


@require_GET
def missing_models(request, template_id):
    template = get_object_or_404(Template.objects.prefetch_related("models"), pk=template_id)
    report = library.template_report(template)
    return JsonResponse({"template_id": template.pk, "name": template.name, **_missing_part(report)})


def _missing_part(report):
    keys = ("can_generate", "missing_count", "missing_models", "managed_models", "error")
    return {key: report[key] for key in keys if key in report}


@require_POST
@queue_action
def install_missing(request, template_id):
    template = get_object_or_404(Template.objects.prefetch_related("models"), pk=template_id)
    report = library.template_report(template)
    return JsonResponse({"template_id": template.pk, **library.install_missing(report["missing_models"], request.user)})


def check_report(request):
    """Scan a workflow sent with the request, without saving it anywhere."""
    result = scan_workflow(upload.workflow_from(request))
    checked = library.Checker().check(result.models)
    return {
        "format": result.format,
        "warnings": result.warnings,
        "models_total": len(checked),
        **library.summary(checked),
    }


@csrf_exempt  # upload.csrf_refusal checks, once the workflow's own form parser is in place
@require_POST
@queue_action
def check(request):
    try:
        return upload.csrf_refusal(request) or JsonResponse(check_report(request))
    except WorkflowError as exc:
        status = 413 if isinstance(exc, upload.WorkflowTooLarge) else 400
        return JsonResponse({"error": str(exc)}, status=status)


@login_required_page
def templates_page(request):
    planner = library.Planner()
    cards = [{"report": report, "plan": planner.plan(report["missing_models"])} for report in library.all_reports()]
    return render(request, "templates_scan/templates.html", {"cards": cards, "dirs": library.template_dirs()})


@require_POST
@login_required_page
def rescan_page(request):
    """The templates page's Rescan button: staff only, like the folders the page names for them."""
    if not request.user.is_staff:
        raise PermissionDenied
    messages.info(request, f"Rescanned: {library.scan_summary(library.scan_directories())}.")
    return redirect("templates-page")


def _card(request, template_id, **context):
    template = get_object_or_404(Template.objects.prefetch_related("models"), pk=template_id)
    report = library.template_report(template)
    plan = library.Planner().plan(report["missing_models"])
    return render(request, "templates_scan/_card.html", {"report": report, "plan": plan, **context})


@require_GET
@login_required_page
def template_card(request, template_id):
    """One card of the templates page, fetched again when the queue changes under it."""
    return _card(request, template_id)


@csrf_exempt  # as check()
@require_POST
@login_required_page
def check_fragment(request):
    """The templates page's check form (htmx): the same report as HTML."""
    try:
        refused = upload.csrf_refusal(request)
        if refused:
            return refused
        report, error = check_report(request), None
    except WorkflowError as exc:
        report, error = None, str(exc)
    return render(request, "templates_scan/check_result.html", {"report": report, "error": error})


@require_http_methods(["GET", "POST"])
@login_required_page
def install_missing_fragment(request, template_id):
    """GET: the card asking to confirm the presets and their size; POST: queue the confirmed
    presets and show the card as it is now."""
    if request.method == "GET":
        return _card(request, template_id, confirming=True)
    template = get_object_or_404(Template.objects.prefetch_related("models"), pk=template_id)
    missing = library.template_report(template)["missing_models"]
    outcome = library.install_missing(missing, request.user, confirmed=request.POST.getlist("presets"))
    return _card(request, template_id, outcome=outcome)
