"""How callers authenticate: browsers with a session and CSRF, scripts with an API token."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, token_digest
from tests.conftest import make_preset

pytestmark = pytest.mark.django_db


@pytest.fixture
def preset():
    return make_preset("ALPHA")


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


def test_every_refusal_under_api_is_json_with_a_message(preset):
    anonymous = Client(enforce_csrf_checks=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.create_user("alice"))
    answers = {
        "anonymous without CSRF": anonymous.post("/api/presets/ALPHA/install"),
        "session without CSRF": browser.post("/api/presets/ALPHA/install"),
        "wrong token": anonymous.post("/api/presets/ALPHA/install", HTTP_AUTHORIZATION="Bearer pst_wrong"),
        "unknown path": anonymous.get("/api/nothing/here"),
        "wrong method": anonymous.get("/api/presets/ALPHA/install"),
    }
    assert {what: answer.status_code for what, answer in answers.items()} == {
        "anonymous without CSRF": 401,
        "session without CSRF": 403,
        "wrong token": 401,
        "unknown path": 404,
        "wrong method": 405,
    }
    assert all(answer["Content-Type"] == "application/json" for answer in answers.values())
    assert answers["anonymous without CSRF"].json()["error"].startswith("log in, or send an API token")
    assert "CSRF check failed (CSRF cookie not set)" in answers["session without CSRF"].json()["error"]
    assert answers["wrong token"].json() == {"error": "invalid API token"}
    assert answers["wrong method"].json() == {"error": "GET is not allowed here; use POST"}
    assert answers["wrong method"]["Allow"] == "POST"


def test_pages_outside_the_api_keep_their_html_errors():
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.create_user("alice"))
    refused = browser.post("/logout/")
    assert refused.status_code == 403 and refused["Content-Type"].startswith("text/html")
    assert Client().get("/no/such/page")["Content-Type"].startswith("text/html")


@pytest.mark.urls("tests.crashing_urls")
def test_a_crash_under_api_answers_json_500():
    answer = Client(raise_request_exception=False).get("/api/crash")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal server error; the server's log has the details"}


def test_a_token_counts_only_under_api(preset):
    admin = User.objects.create_superuser("root", password="pw")
    token = ApiToken.issue(admin, "tests")
    script = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert script.get("/admin/").status_code == 302  # to the login page: the header is ignored
    added = script.post("/admin/auth/user/add/", {"username": "mallory", "password1": "x", "password2": "x"})
    assert added.status_code == 403 and not User.objects.filter(username="mallory").exists()
    assert script.post("/api/presets/ALPHA/install").status_code == 202


def test_an_expired_token_is_refused_as_expired(preset, capsys):
    User.objects.create_user("bot")
    call_command("create_api_token", "bot", expires_in=30)
    token = capsys.readouterr().out.strip()
    stored = ApiToken.objects.get()
    assert timedelta(days=29) < stored.expires_at - timezone.now() <= timedelta(days=30)
    script = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert script.post("/api/presets/ALPHA/install").status_code == 202
    ApiToken.objects.update(expires_at=timezone.now())
    refused = script.post("/api/presets/ALPHA/cancel")
    assert refused.status_code == 401 and refused.json() == {"error": "API token expired"}


def test_create_api_token_refuses_a_lifetime_that_is_not_positive():
    User.objects.create_user("bot")
    with pytest.raises(CommandError, match="positive number of days"):
        call_command("create_api_token", "bot", expires_in=0)
    assert not ApiToken.objects.exists()


def test_the_admin_lists_tokens_and_revokes_them(preset, admin_client):
    bot = User.objects.create_user("bot")
    token = ApiToken.issue(bot, "nightly sync", expires_at=timezone.now() + timedelta(days=7))
    Client().get("/api/presets/ALPHA", HTTP_AUTHORIZATION=f"Bearer {token}")
    listing = admin_client.get("/admin/accounts/apitoken/").content.decode()
    shown = ("Name", "User", "Prefix", "Created at", "Last used at", "Expires at", "nightly sync", "bot", token[:8])
    assert [text for text in shown if text not in listing] == []
    stored = ApiToken.objects.get()
    revoked = admin_client.post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [stored.pk]}, follow=True
    )
    assert "Revoked 1 token" in revoked.content.decode()
    assert Client().post("/api/presets/ALPHA/install", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


BEFORE_THE_MOVE = ("presetsite", "0002_token_expiry_and_login_failures")


@pytest.mark.django_db(transaction=True)
def test_a_token_issued_before_tokens_moved_to_accounts_still_works(preset):
    """Tokens lived in the presetsite app's tables; migrating an existing database keeps them."""
    MigrationExecutor(connection).migrate([("accounts", None), BEFORE_THE_MOVE])
    old_apps = MigrationExecutor(connection).loader.project_state(BEFORE_THE_MOVE, at_end=True).apps
    token = "pst_issued-before-the-move"
    old_apps.get_model("presetsite", "ApiToken").objects.create(
        user_id=User.objects.create_user("bot").pk, name="old script", digest=token_digest(token), prefix=token[:8]
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    answer = Client().post("/api/presets/ALPHA/install", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 202
    assert ApiToken.objects.get().name == "old script"
