# Joins three independent migrations of one session: alert groups (h20), SQLite full-text search
# (h23) and per-user preferences (h24). None touches another's tables.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0013_h20_alert_groups"),
        ("events", "0013_h23_sqlite_fts"),
        ("events", "0013_h24_preferences"),
    ]

    operations = []
