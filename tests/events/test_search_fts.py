"""Free text (`q`) through the engines' own trigram indexes (events.stores.orm.text).

SQLite: migration 0013_h23_sqlite_fts's FTS5 table follows every insert, delete and update of
`events_event`, and a text of 3 or more characters in any script is looked up in it; shorter
texts, and texts so common that a lookup would fetch more than PROBE rows, are read newest
first over a bounded scan. PostgreSQL: pg_trgm narrows non-ASCII text when the database's
LC_CTYPE makes trigrams of it (C.UTF-8), and only then. Every answer equals the plain check of
every stored event (tests/events/test_search_indexes.py `expected`).
"""

from __future__ import annotations

from datetime import timedelta

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from events.stores.orm import text as orm_text
from events.stores.orm.store import OrmStore
from tests.events.store_fixtures import (  # noqa: F401  (fixtures)
    _truncate,
    make_event,
    now_second,
    pg_alias_fixture,
)
from tests.events.test_search_indexes import DETAILS, QUERIES, expected, found, load, plan

FTS = orm_text.FTS_TABLE
WORDS = orm_text.WORDS_TABLE


def fts_seqs(text: str, using: str = "default") -> list[int]:
    return sorted(orm_text.fts_rowids(using, text, limit=1000))


def seqs_of(store, ids: list[str]) -> list[int]:
    from events.models import Event

    return sorted(Event.objects.using(store.using).filter(event_id__in=ids)
                  .values_list("seq", flat=True))  # fmt: skip


def statements(store, **search_args) -> list[str]:
    with CaptureQueriesContext(connections[store.using]) as queries:
        found(store, **search_args)
    return [q["sql"] for q in queries.captured_queries]


# ---- SQLite ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sqlite_has_fts5_trigram_and_the_migration_made_the_index():
    assert orm_text.fts5_trigram_available()
    assert orm_text.fts_ready("default")
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [FTS])
        assert "trigram" in cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_fts_index_follows_ingest_purge_and_updates():
    from events.models import Event

    store = OrmStore()
    events = load(store)
    seq = seqs_of(store, ["e1"])

    assert fts_seqs("注文を受") == seq  # CJK, 4 characters
    assert fts_seqs("ünïcödé gmbh") == seq
    assert fts_seqs('😀😀"') == seqs_of(store, ["e3"])  # emoji and a quote: 3 characters
    assert fts_seqs("1234") == seqs_of(store, ["e0", "e1", "e2", "e4"])

    Event.objects.filter(event_id="e1").update(search_text='e1\n{"note": "replaced"}')
    assert fts_seqs("注文を受") == [] and fts_seqs("replaced") == seq

    store.purge(before=events[-1].received_at + timedelta(seconds=1))
    assert Event.objects.count() == 0
    assert fts_seqs("replaced") == [] and fts_seqs("1234") == []
    with connections["default"].cursor() as cursor:
        cursor.execute(f"INSERT INTO {FTS} ({FTS}) VALUES ('integrity-check')")  # raises if not


@pytest.mark.django_db
def test_sqlite_looks_up_text_of_3_or_more_characters_in_the_fts_index():
    store = OrmStore()
    events = load(store)

    for text in ["注文を受", "ünïcödé", "strasse", "off_sale", '"note": "no', "order-1234"]:
        ran = statements(store, text=text)
        table = WORDS if orm_text.search.words(text) else FTS  # a token: the word index
        assert any("MATCH" in sql and table in sql for sql in ran), (text, ran)
        assert found(store, text=text) == expected(events, text=text), text
    for text in ["注文", "😀", "e1"]:  # fewer than 3 characters: no trigram to look up
        ran = statements(store, text=text)
        assert not any("MATCH" in sql for sql in ran), (text, ran)
        assert found(store, text=text) == expected(events, text=text), text
    # More candidates than a page (4 hold "1234", pages of 2): their seqs are ordered and cut
    # in a subquery, and only the page's rows read, every page (found pages by cursor).
    ran = [sql for sql in statements(store, text="1234") if "events_event_fts" not in sql]
    assert ran and all('IN (SELECT U0."seq"' in sql and "LIMIT 3)" in sql for sql in ran), ran
    assert found(store, text="1234", limit=1) == expected(events, text="1234")


@pytest.mark.django_db
def test_sqlite_reads_a_text_more_common_than_the_probe_by_time_and_still_finds_it_all(
    monkeypatch,
):
    store = OrmStore()
    t = now_second()
    events = load(store) + [
        make_event(at=t + timedelta(minutes=1, seconds=n), event_id=f"x{n}",
                   detail={"note": f"order number {n}"})
        for n in range(12)
    ]  # fmt: skip
    store.ingest(events[len(DETAILS) :])
    monkeypatch.setattr(orm_text, "PROBE", 3)

    for text in ["order", "ord", "number 1", "ünïcödé"]:
        assert found(store, text=text) == expected(events, text=text), text
        assert found(store, text=text, scan=4, limit=2) == expected(events, text=text), text
    ran = statements(store, text="order")
    assert any("LIKE" in sql and FTS not in sql for sql in ran), ran  # the bounded read


@pytest.mark.django_db
def test_every_query_answers_alike_without_the_fts_index():
    """A SQLite that lacks FTS5 (no tables, no triggers) searches by the bounded scan."""
    store = OrmStore()
    events = load(store)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {FTS}_ai")
        cursor.execute(f"DROP TRIGGER {WORDS}_ai")
    assert not orm_text.fts_ready("default") and not orm_text.words_ready("default")

    for text in QUERIES:
        ran = statements(store, text=text)
        assert not any("MATCH" in sql for sql in ran), (text, ran)
        assert found(store, text=text) == expected(events, text=text), text


# ---- PostgreSQL: the database's LC_CTYPE decides which trigrams pg_trgm makes ---------------


@pytest.fixture(scope="module")
def utf8_alias(postgres_url, django_db_setup, django_db_blocker):
    """A database of LC_CTYPE C.UTF-8 (what a Debian install makes) on the session server."""
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS edobs_utf8")
        admin.execute("CREATE DATABASE edobs_utf8 TEMPLATE template0 ENCODING 'UTF8' "
                      "LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'")  # fmt: skip
    config = dj_database_url.parse(postgres_url.rsplit("/", 1)[0] + "/edobs_utf8", conn_max_age=0)
    settings.DATABASES["pg_utf8"] = config
    connections.settings["pg_utf8"] = connections.configure_settings(
        {"default": connections.settings["default"], "pg_utf8": config}
    )["pg_utf8"]
    with django_db_blocker.unblock():
        call_command("migrate", database="pg_utf8", verbosity=0, interactive=False)
    yield "pg_utf8"
    with django_db_blocker.unblock():
        connections["pg_utf8"].close()
    connections.settings.pop("pg_utf8", None)
    settings.DATABASES.pop("pg_utf8", None)


def bulk(alias: str) -> None:
    """20,000 events besides the test's: enough for the planner to prefer an index."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_event (event_id, source, detail_type, account, region, time, at,
                at_source, received_at, fn, raw, batch, search_text)
            SELECT 'bulk-' || n, 'project', 'step', '111111111111', 'us-east-1',
                now() - interval '1 second' * n, now() - interval '1 second' * n, 'envelope',
                now(), 'fn' || (n % 7),
                jsonb_build_object('detail', jsonb_build_object('orderId', n, 'note', '注文')),
                gen_random_uuid(),
                'bulk-' || n || E'\\n{"orderid": ' || n || ', "note": "注文"}'
            FROM generate_series(1, 20000) AS n
            """
        )
        cursor.execute("ANALYZE events_event")


def test_postgresql_narrows_non_ascii_text_by_trigrams_where_its_locale_makes_them(
    utf8_alias, pg_alias, django_db_blocker
):
    with django_db_blocker.unblock():
        stores = {"C.UTF-8": OrmStore(using=utf8_alias), "C": OrmStore(using=pg_alias)}
        try:
            for store in stores.values():
                bulk(store.using)
            events = {name: load(store) for name, store in stores.items()}
            cjk = {
                "C.UTF-8": plan(utf8_alias, stores["C.UTF-8"], text="注文を受",
                                off=("seqscan", "indexscan")),
                "C": plan(pg_alias, stores["C"], text="注文を受"),
            }  # fmt: skip

            assert "event_search_trgm" in cjk["C.UTF-8"], cjk["C.UTF-8"]
            assert "event_search_trgm" not in cjk["C"] and "event_time" in cjk["C"], cjk["C"]
            for name, store in stores.items():
                assert orm_text.pg_indexed(store.using, "注文を受") is (name == "C.UTF-8")
                assert not orm_text.pg_indexed(store.using, "注文")  # 2 characters
                assert not orm_text.pg_indexed(store.using, "😀😀😀")  # no letters
                for text in ["注文を受", "ünïcödé", "を受", "😀"]:
                    assert found(store, text=text, scan=5000, limit=100) == expected(
                        events[name], text=text
                    ), (name, text)
        finally:
            for store in stores.values():
                _truncate(store.using)


def test_the_system_check_warns_when_sqlite_lacks_fts5_trigram(monkeypatch):
    from events import checks

    assert checks.check_sqlite_search(None) == []  # this machine's SQLite has it
    monkeypatch.setattr(checks, "fts5_trigram_available", lambda: False)
    warnings = checks.check_sqlite_search(None)
    assert [w.id for w in warnings] == ["events.W230"] and "FTS5" in warnings[0].msg


# ---- The whole-word index (migration 0015_h26_word_index) ----------------------------------

LONG = "x" * (orm_text.LONG_TEXT + 1)  # over what PostgreSQL's index holds the words of
WORD_DETAILS = [
    {"ref": "ord-4200", "note": "shipped"},
    {"ref": "record-42001-", "note": "held"},
    {"ref": "zoë-4200x"},
    {"ref": "ord-4200-x", "tag": "-" + "a" * 150 + "b"},  # a run longer than WORD_MAX
    {"ref": "ORD-9", "blob": LONG + " ord-4200"},  # too long for PostgreSQL's words
    {"note": "a-ë4200 €4200z"},  # non-ASCII beside tokens (no other "4200..." token)
]
# query -> whether the word index serves it
WORD_QUERIES = {
    "rd-420": True,  # "rd" may be a tail ("record"): only "420" is a token, a prefix
    "cord-4200": True,  # not "cord" (the tail of "record"): "4200", a prefix
    "ord-4200-": True,  # a whole token: not "ord-42001-"
    "-4200x": True,
    "zoë-4200": True,
    "a-ë4200": False,  # "4200" follows a non-ASCII letter: no token of its own in SQLite
    "ë4200": False,
    "€4200": False,  # SQLite's token is "€4200z"
    "ord-42": False,  # too short to narrow
    "shipped": False,  # one run: may be the tail of a longer token
    "-" + "a" * 120: True,  # the first WORD_MAX characters, a prefix
    "-" + "a" * 150 + "b-": True,
    "rd-9": False,
}


def load_words(store):
    t = now_second()
    events = [
        make_event(at=t + timedelta(seconds=n), event_id=f"w{n}", detail=detail)
        for n, detail in enumerate(WORD_DETAILS)
    ]
    store.ingest(events)
    return events


def test_words_are_the_tokens_every_holder_of_the_text_holds():
    from events.domain.search import Word, words

    assert words("ord-333333") == (Word("333333", prefix=True),)
    assert words("ord-4200-") == (Word("4200", prefix=False),)
    assert words("x-abc de-fghi") == (Word("abc", prefix=False), Word("fghi", prefix=True))
    assert words("shiporder") == words("a-ë4200") == words("x-ab") == words("注文-番号") == ()
    assert words("x-4200ë") == (Word("4200", prefix=True),)
    assert words("-" + "a" * 150 + "-") == (Word("a" * 100, prefix=True),)


@pytest.mark.django_db
def test_sqlite_looks_tokens_up_in_the_word_index_and_answers_alike():
    from events.models import Event

    store = OrmStore()
    events = load_words(store)

    for text, by_words in WORD_QUERIES.items():
        ran = statements(store, text=text)
        assert any(WORDS in sql and "MATCH" in sql for sql in ran) is by_words, (text, ran)
        assert found(store, text=text) == expected(events, text=text), text
    assert found(store, text="rd-420") == ["w4", "w3", "w1", "w0"]
    assert found(store, text="ord-4200-") == ["w3"]

    w0 = seqs_of(store, ["w0"])
    assert sorted(orm_text.words_rowids("default", orm_text.search.words("x-shipped"),
                                        limit=10)) == w0  # fmt: skip
    Event.objects.filter(event_id="w0").update(search_text='w0\n{"note": "replaced"}')
    assert orm_text.words_rowids("default", orm_text.search.words("x-shipped"), limit=10) == []
    store.purge(before=events[-1].received_at + timedelta(seconds=1))
    assert orm_text.words_rowids("default", orm_text.search.words("x-replaced"), limit=10) == []
    with connections["default"].cursor() as cursor:
        cursor.execute(f"INSERT INTO {WORDS} ({WORDS}) VALUES ('integrity-check')")


def test_postgresql_looks_tokens_up_in_the_word_index_and_answers_alike(
    pg_alias, django_db_blocker
):
    store = OrmStore(using=pg_alias)
    with django_db_blocker.unblock():
        try:
            bulk(pg_alias)
            events = load_words(store)
            with CaptureQueriesContext(connections[pg_alias]) as queries:
                found(store, text="rd-420")
            lookup = next(q["sql"] for q in queries.captured_queries if "@@" in q["sql"])
            with connections[pg_alias].cursor() as cursor:
                cursor.execute("EXPLAIN " + lookup)
                by_words = "\n".join(row[0] for row in cursor.fetchall())
            by_trigrams = plan(pg_alias, store, text="a-ë4200", off=("seqscan", "indexscan"))

            assert "event_search_words" in by_words and "event_search_trgm" not in by_words
            assert "''420'':*" in by_words, by_words  # the token, a prefix
            assert "event_search_trgm" in by_trigrams, by_trigrams
            for text in WORD_QUERIES:
                assert found(store, text=text) == expected(events, text=text), text
            assert found(store, text="rd-420") == ["w4", "w3", "w1", "w0"]
            with connections[pg_alias].cursor() as cursor:
                cursor.execute(f"SELECT event_id FROM events_event WHERE {orm_text.WORDS_SQL} "
                               "@@ %s::tsquery ORDER BY seq", ["'~long'"])  # fmt: skip
                assert [row[0] for row in cursor.fetchall()] == ["w4"]
        finally:
            _truncate(pg_alias)
