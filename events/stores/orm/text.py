"""Free text (`q`) in the ORM store: the rows an event search reads, narrowed by the engine's own
full-text index where it has one for the text, else by a bounded scan.

Every narrowing here gives a superset of the matches (a trigram index finds candidates; the
events.domain.search check of each stored event decides), so SQLite, PostgreSQL and DynamoDB
answer alike. What each engine can look up:

- SQLite: the FTS5 table `events_event_fts` (migration 0013_h23_sqlite_fts, tokenizer
  `trigram`, rowid = the event's `seq`, kept in step by triggers) finds any text of 3 or more
  characters, in any script ("注文番号", "😀😀😀", "ord-1234"): its trigrams are characters, not
  words. A text matched by more than PROBE events is common enough that reading the newest rows
  finds a page soon: those are read by time and filtered in SQL (`instr`), bounded like a scan.
- PostgreSQL: pg_trgm's GIN index on `search_text` (migration 0007). pg_trgm only makes
  trigrams of runs of 3 characters its locale calls letters or digits: ASCII ones in every
  locale, others (CJK, accented letters) only when the database's LC_CTYPE is not C/POSIX
  (`C.UTF-8`, `en_US.UTF-8`). A text without such a run would make it read the whole index.
- A whole-word index beside each (migration 0015_h26_word_index) serves a text with a token
  events.domain.search.words finds ("333333" of "ord-333333": a prefix): a trigram lookup of
  "ord-333333" must read the lists of "ord" and "rd-", which every "ord-<n>" holds, while the
  tokens that start with "333333" are few. SQLite: the FTS5 table `events_event_words`
  (tokenizer `ascii`: its tokens are runs of ASCII letters and digits, and of any non-ASCII
  characters next to them, which `words` never takes a token beside); PostgreSQL: a GIN index
  on WORDS_SQL (WORDS_FUNCTION_BODY), the runs of a-z and 0-9 of `search_text` cut every 100
  characters (tsvector's 2,047-byte lexemes), with a mark instead for a text over 1,000,000
  characters (the 1 MB tsvector) that every word query finds. Both are looked up first, on
  their own, for at most PROBE + 1 seqs; the page's rows are those seqs filtered by
  `instr`/`strpos` (never by LIKE, which would bring pg_trgm's lists in). More than PROBE
  candidates: the trigram path.
- Anything else (1 or 2 characters such as "注文", an emoji on PostgreSQL, SQLite without FTS5)
  is a bounded scan: the next `scan` rows of the window, newest first, filtered in SQL; the page
  then comes back with a cursor to go on from the scan's edge.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from datetime import datetime
from typing import NamedTuple

from django.db import connections
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import StrIndex

from events.domain import search

FTS_TABLE = "events_event_fts"
FTS_OBJECTS = (FTS_TABLE, f"{FTS_TABLE}_ai", f"{FTS_TABLE}_ad", f"{FTS_TABLE}_au")
FTS_MIN_CHARS = 3  # the trigram tokenizer finds nothing shorter
WORDS_TABLE = "events_event_words"
WORDS_OBJECTS = (WORDS_TABLE, f"{WORDS_TABLE}_ai", f"{WORDS_TABLE}_ad", f"{WORDS_TABLE}_au")
LONG_TEXT = 1_000_000  # characters: longer texts are WORDS_LONG in the PostgreSQL index
WORDS_LONG = "~long"
# The PostgreSQL index's expression (migration 0015_h26_word_index), repeated exactly in queries:
# a function of WORDS_FUNCTION_BODY, plpgsql so that the planner keeps its COST (a SQL function
# is inlined, and regexp_replace's cost of 1 made a scan of 1,000,000 rows look cheap).
WORDS_SQL = "edobs_search_words(search_text)"
WORDS_FUNCTION_BODY = (
    f"CASE WHEN length(t) <= {LONG_TEXT} THEN array_to_tsvector(array_remove(string_to_array("
    "regexp_replace(regexp_replace(t, '[^a-z0-9]+', ' ', 'g'), "
    f"'[a-z0-9]{{{search.WORD_MAX}}}', '\\& ', 'g'), ' '), '')) "
    f"ELSE array_to_tsvector('{{{WORDS_LONG}}}') END"
)
PROBE = 2000  # at most this many matches are fetched by rowid; more: read by time
# A run of 3 characters that pg_trgm's words are made of in a non-C locale (letters and digits;
# Python's classes stand in for the C library's: a character they disagree on costs speed, never
# an answer).
_WORD_RUN = re.compile(r"[^\W_]{3}")

Edge = tuple[datetime, int] | None


class Narrowed(NamedTuple):
    """`rows`: the candidates; `edge`: where a bounded scan that stopped before the window's end
    stopped; `keys`: how many seqs a SQLite index lookup found, 0 for any other narrowing (a
    page of fewer rows than that reads them key first: Store.events_page)."""

    rows: QuerySet
    edge: Edge = None
    keys: int = 0


def narrow(rows: QuerySet, text: str, *, using: str, scan: int) -> Narrowed:
    """`rows` narrowed to the candidates for `text` (folded, storable)."""
    connection = connections[using]
    tokens = search.words(text)
    if tokens and connection.vendor == "sqlite" and words_ready(using):
        found = words_rowids(using, tokens, limit=PROBE + 1)
        if len(found) <= PROBE:
            return Narrowed(holding(rows.filter(seq__in=found), text), keys=len(found))
    if tokens and connection.vendor == "postgresql":
        found = pg_word_seqs(using, tokens, limit=PROBE + 1)
        if len(found) <= PROBE:
            return Narrowed(holding(rows.filter(seq__in=found), text))
    if connection.vendor == "sqlite" and len(text) >= FTS_MIN_CHARS and fts_ready(using):
        found = fts_rowids(using, text, limit=PROBE + 1)
        if len(found) <= PROBE:
            return Narrowed(rows.filter(seq__in=found), keys=len(found))
        rows, edge = bounded(rows, scan)
        return Narrowed(rows.filter(search_text__contains=text), edge)
    if connection.vendor == "postgresql" and pg_indexed(using, text):
        return Narrowed(rows.filter(search_text__contains=text))
    rows, edge = bounded(rows, scan)
    return Narrowed(rows.filter(search_text__contains=text), edge)


@functools.cache
def fts5_trigram_available() -> bool:
    """Whether this Python's SQLite (the library Django's backend uses) has FTS5 and its
    `trigram` tokenizer (SQLite >= 3.34, built with FTS5, as Debian's and python.org's are)."""
    try:
        with sqlite3.connect(":memory:") as probe:
            probe.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
    except sqlite3.Error:
        return False
    return True


def fts_ready(using: str) -> bool:
    """Whether the FTS5 table and the triggers that keep it in step exist (a SQLite without
    FTS5 made none of them: migration 0013 skipped them, events.checks warns)."""
    return _all_exist(using, FTS_OBJECTS)


def fts_rowids(using: str, text: str, *, limit: int) -> list[int]:
    """The seqs of up to `limit` events whose search text holds `text`: one FTS5 phrase (the
    text quoted, its quotes doubled: nothing inside an FTS5 string is syntax)."""
    phrase = '"' + text.replace('"', '""') + '"'
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s LIMIT %s", [phrase, limit]
        )
        return [row[0] for row in cursor.fetchall()]


def words_ready(using: str) -> bool:
    """Whether the word index's FTS5 table and its triggers exist (migration 0015_h26)."""
    return _all_exist(using, WORDS_OBJECTS)


def _all_exist(using: str, names: tuple[str, ...]) -> bool:
    """Whether every one of `names` (tables, triggers) is in SQLite's schema."""
    marks = ", ".join(["%s"] * len(names))
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM sqlite_master WHERE name IN ({marks})", names)
        return cursor.fetchone()[0] == len(names)


def words_rowids(using: str, tokens: tuple[search.Word, ...], *, limit: int) -> list[int]:
    """The seqs of up to `limit` events holding every token (each a-z0-9 only: no syntax)."""
    query = " AND ".join(f'"{word.text}"' + ("*" if word.prefix else "") for word in tokens)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT rowid FROM {WORDS_TABLE} WHERE {WORDS_TABLE} MATCH %s LIMIT %s",
            [query, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def pg_word_seqs(using: str, tokens: tuple[search.Word, ...], *, limit: int) -> list[int]:
    """The seqs of up to `limit` events holding every token, by the GIN index on WORDS_SQL: a
    statement of its own, as SQLite's lookup is, so that the planner never trades the index
    for reading the table by time on a guess of how many rows a prefix finds (it guessed 830
    of 100,000 for one and read them all)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT seq FROM events_event WHERE {WORDS_SQL} @@ %s::tsquery LIMIT %s",
            [tsquery(tokens), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def tsquery(tokens: tuple[search.Word, ...]) -> str:
    """The tokens as a tsquery for WORDS_SQL (lexemes quoted; each a-z0-9 only), or the mark
    of a text too long to index."""
    every = " & ".join(f"'{word.text}'" + (":*" if word.prefix else "") for word in tokens)
    return f"({every}) | '{WORDS_LONG}'"


def holding(rows: QuerySet, text: str) -> QuerySet:
    """`rows` whose search text holds `text`, by `instr`/`strpos`: a filter of the rows an
    index found, which no index serves (LIKE would bring pg_trgm's in)."""
    return rows.alias(_at=StrIndex(F("search_text"), Value(text))).filter(_at__gt=0)


def pg_indexed(using: str, text: str) -> bool:
    """Whether pg_trgm's index can narrow a LIKE for `text` on this database."""
    if search.indexed_text(text):
        return True
    if not _WORD_RUN.search(text):
        return False
    with connections[using].cursor() as cursor:
        cursor.execute("SHOW lc_ctype")
        ctype = cursor.fetchone()[0]
    return ctype not in ("C", "POSIX")


def bounded(rows: QuerySet, scan: int) -> tuple[QuerySet, Edge]:
    """The next `scan` rows (newest first), and the position of the last of them when more
    follow: a search no index narrows reads no more than a search page may (Store.events_page).
    """
    edge = rows.order_by("-time", "-seq").values_list("time", "seq")[scan - 1 : scan]
    found = list(edge)
    if not found:
        return rows, None
    time, seq = found[0]
    # `time >= edge` on its own as well: SQLite bounds its index range by it (under the OR alone
    # it read the time index to its end when the page did not fill).
    after = rows.filter(time__gte=time).filter(Q(time__gt=time) | Q(seq__gte=seq))
    return after, (time, seq)
