"""SQLite only: an FTS5 trigram index of `search_text` for free-text search (`q`).

`events_event_fts` is an external-content FTS5 table over `events_event` (rowid = `seq`), its
tokenizer `trigram` (SQLite >= 3.34), case-sensitive because `search_text` and the searched
text are both folded by Python (events.domain.search.fold). Three triggers keep it in step with
inserts, deletes (purge) and updates of `search_text`; existing rows are indexed by a rebuild.
A SQLite built without FTS5 or the trigram tokenizer gets nothing here, searches by a bounded
scan as before, and `manage.py check` warns (events.W230). PostgreSQL has its pg_trgm index
(0007); DynamoDB scans.

A later migration that makes SQLite remake `events_event` (most column alterations) drops these
triggers with the old table: such a migration must run `SQLITE_CREATE` again (and `REBUILD`).
"""

from django.db import migrations

from events.stores.orm.text import fts5_trigram_available

SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS events_event_fts USING fts5(search_text, "
    "content='events_event', content_rowid='seq', tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER IF NOT EXISTS events_event_fts_ai AFTER INSERT ON events_event BEGIN "
    "INSERT INTO events_event_fts (rowid, search_text) VALUES (new.seq, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS events_event_fts_ad AFTER DELETE ON events_event BEGIN "
    "INSERT INTO events_event_fts (events_event_fts, rowid, search_text) "
    "VALUES ('delete', old.seq, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS events_event_fts_au AFTER UPDATE OF seq, search_text "
    "ON events_event BEGIN "
    "INSERT INTO events_event_fts (events_event_fts, rowid, search_text) "
    "VALUES ('delete', old.seq, old.search_text); "
    "INSERT INTO events_event_fts (rowid, search_text) VALUES (new.seq, new.search_text); END",
]
REBUILD = "INSERT INTO events_event_fts (events_event_fts) VALUES ('rebuild')"
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS events_event_fts_au",
    "DROP TRIGGER IF EXISTS events_event_fts_ad",
    "DROP TRIGGER IF EXISTS events_event_fts_ai",
    "DROP TABLE IF EXISTS events_event_fts",
]


def sqlite_only(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite" or not fts5_trigram_available():
            return
        with schema_editor.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0012_merge_h2_h5"),
    ]

    operations = [
        migrations.RunPython(sqlite_only([*SQLITE_CREATE, REBUILD]), sqlite_only(SQLITE_DROP)),
    ]
