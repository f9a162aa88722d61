from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import ApiToken


class Command(BaseCommand):
    help = "Issue an API token for a user; scripts send it as `Authorization: Bearer <token>` to /api/."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="script", help="what the token is for")
        parser.add_argument("--expires-in", type=float, metavar="DAYS", help="days until the token stops working")

    def handle(self, *args, username, name, expires_in, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if expires_in is not None and expires_in <= 0:
            raise CommandError("--expires-in must be a positive number of days")
        expires_at = timezone.now() + timedelta(days=expires_in) if expires_in is not None else None
        self.stdout.write(ApiToken.issue(user, name, expires_at=expires_at))
