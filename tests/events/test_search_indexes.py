"""Event search on every store, and PostgreSQL's indexes for it (migration 0007).

The same events and queries on SQLite, PostgreSQL and DynamoDB give the same answers, in any
script; on PostgreSQL, EXPLAIN shows `where` served by the detail's GIN index and a word query by
the trigram index, while a query no trigram index can narrow ("😀") is a bounded scan.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from events.domain import search
from events.domain.search import Where
from events.read.selectors import _matches
from events.stores.base import Window
from tests.events.store_fixtures import (  # noqa: F401  (fixtures)
    ACCOUNT_A,
    ACCOUNT_B,
    make_event,
    now_second,
    pg_alias_fixture,
    postgres_store,
    store_fixture,
)

DETAILS = [
    {"orderId": 1234, "customer": {"name": "Zoë"}, "note": "order shipped 😀"},
    {"orderId": "1234", "customer": {"name": "Ünïcödé GmbH"}, "note": "注文を受け付けました"},
    {"orderId": 1234.0, "city": "Straße 5", "note": "ORDER-1234 on hold"},
    {"orderId": 99, "note": "no smile here", "tags": ["注文", "😀😀"]},
    {"orderId": [1234], "note": "50% off_sale\\path"},
    {"orderId": True, "meta": {"fn": "charge"}, "note": "Ünïcödé"},
]
QUERIES = [
    "😀", "注文", "ünïcödé", "ÜNÏCÖDÉ", "strasse", "STRASSE", "order-1234", "1234", "zoë",
    "smile", "50%", "off_sale", "\\path", '"note": "no', "e1", "nothing-like-it", "",
]  # fmt: skip
WHERES = [
    (Where(("orderId",), 1234),),
    (Where(("orderId",), "1234"),),
    (Where(("customer", "name"), "Zoë"),),
    (Where(("meta", "fn"), "charge"), Where(("orderId",), True)),
]


def load(store):
    t = now_second()
    events = [
        make_event(at=t + timedelta(seconds=n), event_id=f"e{n}", detail=detail,
                   job=f"j{n % 2}", account=ACCOUNT_B if n == 3 else ACCOUNT_A)
        for n, detail in enumerate(DETAILS)
    ]  # fmt: skip
    store.ingest(events)
    return events


def found(store, *, text: str = "", where=(), scan: int = 20_000, limit: int = 2) -> list[str]:
    """Every page of the search the API makes (events.read.selectors.event_search_page)."""
    text = search.fold(text.strip())
    window = Window(newest_first=True, text=text, where=tuple(where))
    ids, cursor = [], None
    for _ in range(50):
        page = store.events_page(
            window, accounts=None, limit=limit, cursor=cursor, scan=scan,
            keep=lambda event: _matches(event, window, text, tuple(where)),
        )  # fmt: skip
        ids += [event.id for event in page.items]
        if (cursor := page.next_cursor) is None:
            return ids
    raise AssertionError("paging did not end")


def expected(events, *, text: str = "", where=()) -> list[str]:
    text = search.fold(text.strip())
    return [
        e.id for e in reversed(events)
        if search.text_matches(e.id, e.detail, text)
        and all(search.where_matches(e.detail, w) for w in where)
    ]  # fmt: skip


def test_it_answers_the_same_free_text_and_detail_searches_on_every_store(store):
    events = load(store)

    for text in QUERIES:
        assert found(store, text=text) == expected(events, text=text), text
        assert found(store, text=text, scan=2) == expected(events, text=text), text
    for where in WHERES:
        assert found(store, where=where) == expected(events, where=where), where
    assert found(store, text="😀") == ["e3", "e0"]
    assert found(store, text="ÜNÏCÖDÉ") == ["e5", "e1"]
    assert found(store, text="strasse") == ["e2"]
    assert found(store, where=WHERES[0]) == ["e2", "e0"]


def test_the_search_text_holds_what_free_text_matches():
    text = search.search_text("ID-1", {"a": "Straße 😀", "b": [1.5, None], "c": "\ud800\x00"})

    assert text.startswith("id-1\n") and "strasse 😀" in text and "[1.5, null]" in text
    assert "\ud800" not in text and "\x00" not in text and text.encode()
    assert [search.storable_text(q) for q in ["zoë 😀", "a\x00", "\udc00"]] == [True, False, False]
    assert [search.indexed_text(q) for q in ["😀", "注文", "ab", "order", "a-12-b", "x1234"]] == [
        False, False, False, True, False, True,
    ]  # fmt: skip


# ---- PostgreSQL: the indexes and the plans -----------------------------------------------------


def plan(alias: str, store, *, off: tuple[str, ...] = ("seqscan",), **search_args) -> str:
    """EXPLAIN of the first statement an event search runs on PostgreSQL, with the scans in
    `off` priced out: at 20,000 rows reading the table by time is as cheap as any index
    (bench/search.py shows the plans at 1,000,000), so this shows which index the planner
    can use for the statement."""
    connection = connections[alias]
    with CaptureQueriesContext(connection) as queries:
        found(store, **search_args)
    select = next(q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"])
    with connection.cursor() as cursor:
        for scan in off:
            cursor.execute(f"SET enable_{scan} = off")
        cursor.execute("EXPLAIN " + select)
        lines = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET ALL")
    return lines


@pytest.fixture
def big_pg(request):
    """20,000 events besides the test's: enough for the planner to prefer an index."""
    store = postgres_store(request)
    alias = store.using
    with connections[alias].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_event (event_id, source, detail_type, account, region, time, at,
                at_source, received_at, fn, raw, batch, search_text)
            SELECT 'bulk-' || n, 'project', 'step', '111111111111', 'us-east-1',
                now() - interval '1 second' * n, now() - interval '1 second' * n, 'envelope',
                now(), 'fn' || (n % 7),
                jsonb_build_object('detail', jsonb_build_object('orderId', n, 'note', 'filler')),
                gen_random_uuid(),
                'bulk-' || n || E'\\n{"orderid": ' || n || ', "note": "filler"}'
            FROM generate_series(1, 20000) AS n
            """
        )
        cursor.execute("ANALYZE events_event")
    return store


def test_postgresql_serves_where_and_word_search_from_their_indexes(big_pg):
    events = load(big_pg)
    alias = big_pg.using

    by_detail = plan(alias, big_pg, where=WHERES[2])
    # No token events.domain.search.words takes ("gmbh" follows a non-ASCII letter): trigrams.
    by_word = plan(alias, big_pg, text="ünïcödégmbh", off=("seqscan", "indexscan"))
    by_emoji = plan(alias, big_pg, text="😀")

    assert "event_detail_gin" in by_detail, by_detail
    assert "event_search_trgm" in by_word, by_word
    assert "event_search_trgm" not in by_emoji and "event_time" in by_emoji, by_emoji
    assert found(big_pg, where=WHERES[2]) == ["e0"]
    assert found(big_pg, text="ünïcödé gmbh") == ["e1"]
    assert found(big_pg, text="ünïcödégmbh") == []
    # The emoji scan is bounded: 20,006 rows at 5,000 a call give a cursor, and still all
    # matches come back over the pages.
    assert found(big_pg, text="😀", scan=5000, limit=100) == expected(events, text="😀")


def test_the_migration_made_both_indexes_on_postgresql(request):
    alias = postgres_store(request).using
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events_event' "
            "AND indexname IN ('event_detail_gin', 'event_search_trgm') ORDER BY indexname"
        )
        rows = cursor.fetchall()
    assert [name for name, _ in rows] == ["event_detail_gin", "event_search_trgm"]
    assert "jsonb_path_ops" in rows[0][1] and "gin_trgm_ops" in rows[1][1]
