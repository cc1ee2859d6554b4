"""The `shared` cache's table (settings.CACHES, the replay throttle), made whatever cache is
configured at migrate time, so that unsetting REDIS_URL later still finds it."""

from django.db import migrations

TABLE = "edobs_shared_cache"


def create(apps, schema_editor):
    from django.core.management.commands.createcachetable import Command

    command = Command()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("events", "0010_h2_replay_origin_conflicts")]

    operations = [migrations.RunPython(create, drop)]
