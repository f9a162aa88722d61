"""Throttling of password guessing on /login/ and /admin/login/.

Every attempt is counted before the password is checked, against the account (whatever
address it comes from) and against the client address (whichever accounts it tries). Past
LOGIN_MAX_FAILURES for an account, or LOGIN_MAX_FAILURES_PER_ADDRESS for an address, within
LOGIN_LOCKOUT_MINUTES of the first failure, even the right password is refused until that
window ends. Counting first means a burst of parallel guesses cannot all pass the check while
the slow password hashes run. A successful login clears the account's count and takes back its
own attempt from the address's count, so an address's count is its failures.
"""

import ipaddress
import math
from datetime import timedelta

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import LoginFailures


def client_address(request):
    """The client's address; an IPv6 client counts by its /64, which one machine usually has whole."""
    address = request.META.get("REMOTE_ADDR") or "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def _keys(username, address):
    return f"account:{username.casefold()}", f"address:{address}"


def _count(key, now):
    """Add one to `key`'s count, starting a new window when the last one has ended; return the
    count and the time left in the window. The row is locked meanwhile, so parallel attempts
    each see their own count."""
    window = timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    with transaction.atomic():
        counters = LoginFailures.objects.select_for_update()
        counter, _ = counters.get_or_create(key=key, defaults={"window_started_at": now})
        if counter.window_started_at <= now - window:
            counter.count, counter.window_started_at = 0, now
        counter.count += 1
        counter.save()
    return counter.count, counter.window_started_at + window - now


def count_attempt(username, address):
    """Count a login attempt; return why it is refused, or None when the password may be checked.

    The address is counted first: an attempt from a locked-out address does not count against
    the account it names, so guesses from one place cannot also lock its owner out everywhere.
    """
    now = timezone.now()
    account, client = _keys(username, address)
    for key, limit, whose in (
        (client, settings.LOGIN_MAX_FAILURES_PER_ADDRESS, "your address"),
        (account, settings.LOGIN_MAX_FAILURES, "this account"),
    ):
        count, left = _count(key, now)
        if count > limit:
            minutes = max(1, math.ceil(left.total_seconds() / 60))
            return (
                f"Too many failed logins for {whose}. Try again in {minutes} minute{'s' if minutes != 1 else ''}; "
                "until then even the right password is refused."
            )
    return None


def attempt_succeeded(username, address):
    account, client = _keys(username, address)
    LoginFailures.objects.filter(key=account).delete()
    LoginFailures.objects.filter(key=client, count__gt=0).update(count=F("count") - 1)


class ThrottledLogin:
    """Counts each attempt of a login form before its password is checked (see above)."""

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()
        address = client_address(self.request)
        refusal = count_attempt(username, address)
        if refusal:
            raise ValidationError(refusal, code="throttled")
        cleaned = super().clean()
        attempt_succeeded(username, address)
        return cleaned


class LoginForm(ThrottledLogin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    pass
