"""Password guessing on /login/ and /admin/login/ is throttled per account and per client address."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client

from accounts.models import LoginFailures

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN_PAGES = ["/login/", "/admin/login/"]


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password="the-right-password", is_staff=True)


def log_in(page, username, password, address="192.0.2.1"):
    """One attempt from `address`; returns (logged in?, page text)."""
    browser = Client(REMOTE_ADDR=address)
    answer = browser.post(page, {"username": username, "password": password})
    return "_auth_user_id" in browser.session, answer.content.decode()


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_an_account_is_locked_after_five_wrong_passwords_from_any_addresses(page, alice):
    for n in range(5):
        logged_in, text = log_in(page, "alice", f"guess-{n}", address=f"192.0.2.{n + 10}")
        assert not logged_in and "Too many" not in text
    logged_in, text = log_in(page, "alice", "the-right-password", address="198.51.100.7")
    assert not logged_in
    assert "Too many failed logins for this account. Try again in 15 minutes" in text


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_an_address_is_locked_after_too_many_failures_across_accounts(page, alice, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    for name in ("bob", "carol", "dave"):
        assert not log_in(page, name, "guess", address="203.0.113.5")[0]
    for _ in range(6):
        logged_in, text = log_in(page, "alice", "the-right-password", address="203.0.113.5")
        assert not logged_in and "Too many failed logins for your address" in text
    assert log_in(page, "alice", "the-right-password", address="203.0.113.6")[0]  # her account is not locked


def test_ipv6_addresses_of_one_network_count_together(alice, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    log_in("/login/", "bob", "guess", address="2001:db8:1:2::1")
    log_in("/login/", "carol", "guess", address="2001:db8:1:2::ffff")
    assert "your address" in log_in("/login/", "alice", "the-right-password", address="2001:db8:1:2::9")[1]
    assert log_in("/login/", "alice", "the-right-password", address="2001:db8:1:3::1")[0]


def test_a_successful_login_clears_the_accounts_failures(alice):
    for _ in range(2):
        for n in range(4):
            assert not log_in("/login/", "alice", f"guess-{n}")[0]
        assert log_in("/login/", "alice", "the-right-password")[0]


def test_successful_logins_do_not_count_against_the_address(alice, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    for _ in range(3):
        assert log_in("/login/", "alice", "the-right-password")[0]


def test_the_lockout_ends_when_its_window_does(alice):
    for n in range(6):
        log_in("/admin/login/", "alice", f"guess-{n}")
    assert "Try again in 15 minutes" in log_in("/admin/login/", "alice", "the-right-password")[1]
    LoginFailures.objects.update(window_started_at=F("window_started_at") - timedelta(minutes=14))
    assert "Try again in 1 minute;" in log_in("/admin/login/", "alice", "the-right-password")[1]
    LoginFailures.objects.update(window_started_at=F("window_started_at") - timedelta(minutes=1))
    assert log_in("/admin/login/", "alice", "the-right-password")[0]


def test_parallel_guesses_cannot_pass_the_limit_together(alice):
    """Each attempt is counted before its password is checked, so a burst is cut at the limit."""
    answers = []

    def guess(n):
        answers.append(log_in("/login/", "alice", f"guess-{n}", address=f"192.0.2.{n + 10}")[1])

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum("Please enter a correct username and password" in text for text in answers) == 5
    assert sum("Too many failed logins for this account" in text for text in answers) == 7
