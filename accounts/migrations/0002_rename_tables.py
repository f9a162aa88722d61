"""The moved tables take the accounts app's names, and the content types (so the permissions
given on them) follow the models from presetsite to accounts."""

from django.db import migrations

MOVED = ("apitoken", "loginfailures")


def relabel_content_types(old, new):
    def relabel(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        types = ContentType.objects.using(schema_editor.connection.alias)
        for model in MOVED:
            if not types.filter(app_label=new, model=model).exists():
                types.filter(app_label=old, model=model).update(app_label=new)

    return relabel


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("presetsite", "0003_models_move_to_accounts"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="apitoken", table=None),
        migrations.AlterModelTable(name="loginfailures", table=None),
        migrations.RunPython(
            relabel_content_types("presetsite", "accounts"), relabel_content_types("accounts", "presetsite")
        ),
    ]
