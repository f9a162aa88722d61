"""Hostile workflow JSON: each is refused with a clear error or scanned without harm, never a crash."""

import pytest
from django.contrib.auth.models import User

from templates_scan.models import Template
from templates_scan.scanner import ModelRoots, WorkflowError, scan_workflow

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
    data = '{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "%s"}}}' % name
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
        assert answer.status_code == 400 and "send a workflow" in answer.json()["error"]
    else:
        assert answer.status_code == 400 and REFUSED[case][1].split("'")[0] in answer.json()["error"]
    assert not Template.objects.exists()


@pytest.mark.django_db
def test_an_oversized_workflow_is_refused(client, settings):
    settings.WORKFLOW_MAX_BYTES = 1000
    client.force_login(User.objects.create_user("alice"))
    answer = client.post("/api/workflows/check", b'{"nodes": []}' + b" " * 2000, content_type="application/json")
    assert answer.status_code == 400 and "larger than 1000 bytes" in answer.json()["error"]
