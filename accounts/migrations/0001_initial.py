"""ApiToken and LoginFailures move here from the presetsite app, with their tables and rows:
this migration only tells Django's state that accounts now owns them (0002 renames the tables)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("presetsite", "0002_token_expiry_and_login_failures"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "name",
                            models.CharField(
                                help_text="What the token is for, e.g. 'nightly sync script'", max_length=100
                            ),
                        ),
                        ("digest", models.CharField(editable=False, max_length=64, unique=True)),
                        (
                            "prefix",
                            models.CharField(
                                editable=False, help_text="First characters, to recognise it", max_length=8
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        (
                            "expires_at",
                            models.DateTimeField(blank=True, help_text="Empty: the token never expires", null=True),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_tokens",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"verbose_name": "API token", "db_table": "presetsite_apitoken"},
                ),
                migrations.CreateModel(
                    name="LoginFailures",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "key",
                            models.CharField(
                                help_text="'account:<username>' or 'address:<ip>'", max_length=255, unique=True
                            ),
                        ),
                        ("count", models.PositiveIntegerField(default=0)),
                        ("window_started_at", models.DateTimeField()),
                    ],
                    options={"verbose_name_plural": "login failures", "db_table": "presetsite_loginfailures"},
                ),
            ],
        ),
    ]
