"""Hostile workflow JSON: each is refused with a clear error or scanned without harm, never a crash."""

import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from storage import ModelRoots
from templates_scan.models import Template
from templates_scan.scanner import WorkflowError, scan_workflow
from tests.conftest import FIXTURES

WORKFLOWS = FIXTURES / "workflows"

REFUSED = {
    "empty": (b"", "invalid JSON"),
    "null": (b"null", "expected a JSON object, got null"),
    "a number": (b"42", "got a number"),
    "a string": (b'"workflow"', "got a string"),
    "a list": (b"[1, 2]", "got a list"),
    "an empty object": (b"{}", "no 'nodes' list"),
    "nodes is a string": (b'{"nodes": "x"}', "'nodes' must be a list"),
    "nodes is null": (b'{"nodes": null, "links": []}', "'nodes' must be a list"),
    "API entries that are not objects": (b'{"1": 5}', "no 'nodes' list"),
    "bad UTF-8": (b'\xff\xfe{"a":1}', "invalid JSON"),
    "a 5000-digit number": (b'{"1": {"class_type": "X", "inputs": {"a": ' + b"9" * 5000 + b"}}}", "invalid JSON"),
    "100000 nested lists": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "truncated": (b'{"nodes": [{"id": 1, "type": "CheckpointLoaderSimple", "widgets_', "invalid JSON"),
    "trailing garbage": (b'{"nodes": []} trailing', "invalid JSON"),
}

SKIPPED = {
    "nodes that are not objects": (b'{"nodes": [1, "two", null]}', "not an object"),
    "a class_type that is a number": (b'{"1": {"class_type": 5, "inputs": {}}}', "'class_type' is not a string"),
    "inputs that are a list": (
        b'{"1": {"class_type": "CheckpointLoaderSimple", "inputs": []}}',
        "'inputs' is not an object",
    ),
    "a subgraph that contains itself": (
        b'{"nodes": [{"id": 1, "type": "aaaa-bbbb"}], "definitions": {"subgraphs": '
        b'[{"id": "aaaa-bbbb", "nodes": [{"id": 2, "type": "aaaa-bbbb"}]}]}}',
        "contains itself",
    ),
}

UNSAFE_NAMES = {
    "path traversal": "../../../etc/passwd.safetensors",
    "an absolute path": "/etc/shadow.safetensors",
    "a Windows drive": "C:\\\\models\\\\x.safetensors",
    "backslash traversal": "..\\\\..\\\\secrets.safetensors",
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_broken_workflows_are_refused_with_a_clear_error(case):
    data, expected = REFUSED[case]
    with pytest.raises(WorkflowError, match=expected):
        scan_workflow(data)


@pytest.mark.parametrize("case", list(SKIPPED), ids=list(SKIPPED))
def test_malformed_parts_are_skipped_with_a_warning(case):
    data, expected = SKIPPED[case]
    result = scan_workflow(data)
    assert result.models == []
    assert any(expected in warning for warning in result.warnings), result.warnings


@pytest.mark.parametrize("case", list(UNSAFE_NAMES), ids=list(UNSAFE_NAMES))
def test_unsafe_model_names_are_flagged_and_never_looked_up(case, tmp_path):
    name = UNSAFE_NAMES[case]
    data = f'{{"1": {{"class_type": "CheckpointLoaderSimple", "inputs": {{"ckpt_name": "{name}"}}}}}}'
    (ref,) = scan_workflow(data).models
    assert ref.unsafe
    assert ModelRoots.from_settings(tmp_path).locate(ref) is None


def test_unicode_tricks_stay_plain_text(tmp_path):
    data = '{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "evil\u202egnp.safetensors"}}}'
    (ref,) = scan_workflow(data.encode()).models
    assert ref.path == "evil\u202egnp.safetensors" and not ref.unsafe
    assert ModelRoots.from_settings(tmp_path).locate(ref) is None


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_the_check_api_answers_400_and_saves_nothing(client, case):
    client.force_login(User.objects.create_user("alice"))
    answer = client.post("/api/workflows/check", REFUSED[case][0], content_type="application/json")
    if case == "empty":
        assert answer.status_code == 400 and "no workflow given" in answer.json()["error"]
    else:
        assert answer.status_code == 400 and REFUSED[case][1].split("'")[0] in answer.json()["error"]
    assert not Template.objects.exists()


@pytest.mark.django_db
def test_an_oversized_workflow_is_refused(client, settings):
    settings.WORKFLOW_MAX_BYTES = 1000
    client.force_login(User.objects.create_user("alice"))
    answer = client.post("/api/workflows/check", b'{"nodes": []}' + b" " * 2000, content_type="application/json")
    assert answer.status_code == 413 and "larger than 1000 B" in answer.json()["error"]


@pytest.fixture
def browser_like(client, settings):
    """A logged-in client that must pass Django's CSRF check, as a browser's session does."""
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(User.objects.create_user("alice"))
    strict.get("/templates/")
    return strict, strict.cookies["csrftoken"].value


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["a form field", "a JSON body", "whitespace"])
def test_an_empty_check_answers_400_no_workflow_given(browser_like, sent):
    client, token = browser_like
    if sent == "a form field":
        answer = client.post("/api/workflows/check", {"workflow": "", "csrfmiddlewaretoken": token})
    else:
        body = b"" if sent == "a JSON body" else b"  \n "
        answer = client.post("/api/workflows/check", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 400 and answer.json()["error"].startswith("no workflow given")


@pytest.mark.django_db
def test_an_empty_check_on_the_page_says_no_workflow_given(browser_like):
    client, token = browser_like
    answer = client.post("/templates/check", {"workflow": "", "csrfmiddlewaretoken": token})
    assert answer.status_code == 200 and "no workflow given" in answer.content.decode()
    empty_file = SimpleUploadedFile("empty.json", b"")
    answer = client.post("/templates/check", {"file": empty_file, "workflow": "", "csrfmiddlewaretoken": token})
    assert "empty.json is empty" in answer.content.decode()


def five_mib_workflow():
    workflow = json.loads((WORKFLOWS / "ui_sdxl_basic.json").read_text())
    workflow["extra"] = {"notes": "x" * (5 * 1024 * 1024)}
    return json.dumps(workflow)


def send(client, token, how, workflow, url="/api/workflows/check"):
    if how == "JSON body":
        return client.post(url, workflow, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    if how == "form field":
        return client.post(url, {"workflow": workflow, "csrfmiddlewaretoken": token})
    upload = SimpleUploadedFile("big.json", workflow.encode(), content_type="application/json")
    return client.post(url, {"file": upload, "csrfmiddlewaretoken": token})


HOW = ["JSON body", "form field", "upload"]


@pytest.mark.django_db
@pytest.mark.parametrize("how", HOW)
def test_a_5_mib_workflow_is_checked_however_it_is_sent(browser_like, how):
    client, token = browser_like
    answer = send(client, token, how, five_mib_workflow())
    assert answer.status_code == 200, answer.content[:300]
    assert answer.json()["format"] == "ui" and answer.json()["missing_count"] == 4


@pytest.mark.django_db
@pytest.mark.parametrize("how", HOW)
def test_a_5_mib_workflow_is_checked_on_the_page(browser_like, how):
    client, token = browser_like
    answer = send(client, token, how, five_mib_workflow(), url="/templates/check")
    assert answer.status_code == 200 and "4 missing" in answer.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("how", HOW)
def test_a_workflow_over_workflow_max_bytes_gets_a_json_413(browser_like, settings, how):
    settings.WORKFLOW_MAX_BYTES = 4 * 1024 * 1024
    client, token = browser_like
    answer = send(client, token, how, five_mib_workflow())
    assert answer.status_code == 413 and "larger than 4.0 MB" in answer.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("how", HOW)
def test_the_check_still_refuses_a_session_post_without_its_csrf_token(browser_like, how):
    client, _ = browser_like
    assert send(client, "wrong", how, (WORKFLOWS / "ui_sdxl_basic.json").read_text()).status_code == 403
    assert send(client, "wrong", how, "{}", url="/templates/check").status_code == 403
