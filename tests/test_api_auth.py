"""How callers authenticate: browsers with a session and CSRF, scripts with an API token."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from presets.models import Category, Preset, PresetFile
from presetsite.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def preset():
    category = Category.objects.create(name="Image Generation", type="image")
    preset = Preset.objects.create(id="ALPHA", name="Alpha", category=category, type="image")
    PresetFile.objects.create(preset=preset, path="checkpoints/a.safetensors", url="https://e.org/a", size="1GB")
    return preset


def test_a_script_with_a_token_can_act_without_csrf(preset):
    token = ApiToken.issue(User.objects.create_user("bot"), "tests")
    script = Client(enforce_csrf_checks=True)
    answer = script.post("/api/presets/ALPHA/install", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 202
    assert ApiToken.objects.get().last_used_at is not None


def test_a_wrong_or_revoked_token_is_refused(preset):
    user = User.objects.create_user("bot")
    token = ApiToken.issue(user, "tests")
    script = Client()
    assert script.post("/api/presets/ALPHA/install", HTTP_AUTHORIZATION="Bearer pst_wrong").status_code == 401
    user.is_active = False
    user.save()
    assert script.post("/api/presets/ALPHA/install", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_only_the_digest_of_a_token_is_stored():
    token = ApiToken.issue(User.objects.create_user("bot"), "tests")
    stored = ApiToken.objects.get()
    assert token not in (stored.digest, stored.prefix, str(stored)) and len(stored.digest) == 64


def test_a_browser_session_needs_the_csrf_token(preset):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.create_user("alice"))
    assert browser.post("/api/presets/ALPHA/install").status_code == 403
    browser.get("/admin/login/")  # any page that sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    assert browser.post("/api/presets/ALPHA/install", HTTP_X_CSRFTOKEN=csrf).status_code == 202


def test_create_api_token_command_prints_a_working_token(preset, capsys):
    User.objects.create_user("bot")
    call_command("create_api_token", "bot", name="sync")
    token = capsys.readouterr().out.strip()
    assert Client().post("/api/presets/ALPHA/install", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 202
