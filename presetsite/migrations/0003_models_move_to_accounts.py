"""ApiToken and LoginFailures now belong to the accounts app (see accounts/migrations/0001):
they leave this app's state only; their tables and rows stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("presetsite", "0002_token_expiry_and_login_failures"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiToken"), migrations.DeleteModel(name="LoginFailures")],
        ),
    ]
