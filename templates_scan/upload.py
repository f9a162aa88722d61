"""A workflow sent to the check views: a JSON body, a `workflow` form field or a `file` upload,
each up to WORKFLOW_MAX_BYTES.

Django stops a form field at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB), and CsrfViewMiddleware reads
the form before any view runs. So the check views are exempt from the middleware, put this app's
form parser first in line (the way Django's docs change upload handlers for one view), and then
run the same CSRF check themselves. Every other view keeps Django's limit.
"""

import os
from email import policy
from email.parser import BytesParser

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.datastructures import MultiValueDict

from presets.sizes import human_size
from templates_scan.scanner import WorkflowError

# Room for the boundaries, part headers and CSRF token around a workflow of the largest size.
FORM_OVERHEAD = 64 * 1024
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
NO_WORKFLOW = "no workflow given: upload a file, paste the workflow JSON, or send it as the request body"


class WorkflowTooLarge(WorkflowError):
    status = 413


def too_large(what="the workflow"):
    return WorkflowTooLarge(f"{what} is larger than {human_size(settings.WORKFLOW_MAX_BYTES)} (WORKFLOW_MAX_BYTES)")


def _read(stream, content_length, limit):
    if content_length > limit:
        raise too_large()
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_large()
    return data


class WorkflowForm(FileUploadHandler):
    """Parses a multipart form whole, with WORKFLOW_MAX_BYTES (not DATA_UPLOAD_MAX_MEMORY_SIZE) as
    the limit of a field."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        body = _read(input_data, content_length, settings.WORKFLOW_MAX_BYTES + FORM_OVERHEAD)
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n" + body
        )
        fields, files = QueryDict(mutable=True, encoding=encoding), MultiValueDict()
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            data = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is None:
                fields.appendlist(name, data.decode(encoding or "utf-8", "replace"))
            elif filename:  # a file input left empty sends a part with an empty name
                files.appendlist(name, SimpleUploadedFile(os.path.basename(filename), data, part.get_content_type()))
        return fields, files


def csrf_refusal(request):
    """Django's CSRF check, with WorkflowForm parsing the form: None when the request passes,
    else the answer refusing it."""
    request.upload_handlers.insert(0, WorkflowForm(request))
    try:
        return CsrfViewMiddleware(lambda request: None).process_view(request, None, (), {})
    except RequestDataTooBig:  # a url-encoded form, which Django parses itself
        raise too_large() from None


def workflow_from(request):
    """The workflow's JSON (bytes or text) from a `file` upload, a `workflow` field or the body.

    Raises WorkflowError when there is none, WorkflowTooLarge above WORKFLOW_MAX_BYTES.
    """
    limit = settings.WORKFLOW_MAX_BYTES
    if request.content_type not in FORM_TYPES:
        data = _read(request, int(request.META.get("CONTENT_LENGTH") or 0), limit)
    elif "file" in request.FILES:
        upload = request.FILES["file"]
        if upload.size > limit:
            raise too_large(upload.name)
        data = upload.read()
        if not data.strip():
            raise WorkflowError(f"{upload.name} is empty")
    else:
        try:
            data = request.POST.get("workflow", "")
        except RequestDataTooBig:
            raise too_large() from None
        if len(data.encode()) > limit:
            raise too_large()
    if not data.strip():
        raise WorkflowError(NO_WORKFLOW)
    return data
