"""A whole-word index of `search_text` beside the trigram ones, for free-text search (`q`) of a
text with a token events.domain.search.words finds ("ord-333333" holds the token "333333...").

SQLite: `events_event_words`, an external-content FTS5 table over `events_event` (rowid =
`seq`), tokenizer `ascii` (tokens: runs of ASCII letters and digits, with any non-ASCII
characters next to them; `words` takes no token beside a non-ASCII character), `detail=none`
(no positions: only tokens and prefixes are looked up), kept in step by three triggers as
0013_h23_sqlite_fts's table is, existing rows indexed by a rebuild. Nothing without FTS5
(events.W230 warns; search as before).

PostgreSQL: `event_search_words`, a GIN index on events.stores.orm.text.WORDS_SQL, a plpgsql
function `edobs_search_words` made here, of high COST (the planner must not think a scan
evaluating it on every row cheap) and PARALLEL RESTRICTED (that COST made it start a worker,
10 ms on a busy machine, for a lookup of one row): the runs of
a-z0-9 of `search_text` as lexemes (array_to_tsvector: no text-search parser, whose URLs, emails
and paths are tokens of their own), cut every 100 characters (lexemes are at most 2,047 bytes),
and a mark instead of them for a text over 1,000,000 characters (a tsvector is at most 1 MB).

As for 0013_h23: a later migration that makes SQLite remake `events_event` drops the triggers.
"""

from django.db import migrations

from events.stores.orm.text import WORDS_FUNCTION_BODY, WORDS_SQL, fts5_trigram_available

SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS events_event_words USING fts5(search_text, "
    "content='events_event', content_rowid='seq', tokenize='ascii', detail='none', "
    "columnsize=0)",
    "CREATE TRIGGER IF NOT EXISTS events_event_words_ai AFTER INSERT ON events_event BEGIN "
    "INSERT INTO events_event_words (rowid, search_text) VALUES (new.seq, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS events_event_words_ad AFTER DELETE ON events_event BEGIN "
    "INSERT INTO events_event_words (events_event_words, rowid, search_text) "
    "VALUES ('delete', old.seq, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS events_event_words_au AFTER UPDATE OF seq, search_text "
    "ON events_event BEGIN "
    "INSERT INTO events_event_words (events_event_words, rowid, search_text) "
    "VALUES ('delete', old.seq, old.search_text); "
    "INSERT INTO events_event_words (rowid, search_text) VALUES (new.seq, new.search_text); END",
]
REBUILD = "INSERT INTO events_event_words (events_event_words) VALUES ('rebuild')"
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS events_event_words_au",
    "DROP TRIGGER IF EXISTS events_event_words_ad",
    "DROP TRIGGER IF EXISTS events_event_words_ai",
    "DROP TABLE IF EXISTS events_event_words",
]
PG_CREATE = [
    "CREATE OR REPLACE FUNCTION edobs_search_words(t text) RETURNS tsvector LANGUAGE plpgsql "
    f"IMMUTABLE STRICT PARALLEL RESTRICTED COST 10000 AS $$ BEGIN RETURN {WORDS_FUNCTION_BODY}; END $$",
    f"CREATE INDEX IF NOT EXISTS event_search_words ON events_event USING gin ({WORDS_SQL})",
]
PG_DROP = [
    "DROP INDEX IF EXISTS event_search_words",
    "DROP FUNCTION IF EXISTS edobs_search_words(text)",
]


def on(vendor, statements):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != vendor or (vendor == "sqlite" and not fts5_trigram_available()):
            return
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0014_merge_h20_h23_h24"),
    ]

    operations = [
        migrations.RunPython(on("sqlite", [*SQLITE_CREATE, REBUILD]), on("sqlite", SQLITE_DROP)),
        migrations.RunPython(on("postgresql", PG_CREATE), on("postgresql", PG_DROP)),
    ]
