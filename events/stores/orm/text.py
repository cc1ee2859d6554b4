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
- Anything else (1 or 2 characters such as "注文", an emoji on PostgreSQL, SQLite without FTS5)
  is a bounded scan: the next `scan` rows of the window, newest first, filtered in SQL; the page
  then comes back with a cursor to go on from the scan's edge.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from datetime import datetime

from django.db import connections
from django.db.models import Q, QuerySet

from events.domain import search

FTS_TABLE = "events_event_fts"
FTS_OBJECTS = (FTS_TABLE, f"{FTS_TABLE}_ai", f"{FTS_TABLE}_ad", f"{FTS_TABLE}_au")
FTS_MIN_CHARS = 3  # the trigram tokenizer finds nothing shorter
PROBE = 2000  # at most this many matches are fetched by rowid; more: read by time
# A run of 3 characters that pg_trgm's words are made of in a non-C locale (letters and digits;
# Python's classes stand in for the C library's: a character they disagree on costs speed, never
# an answer).
_WORD_RUN = re.compile(r"[^\W_]{3}")

Edge = tuple[datetime, int] | None


def narrow(rows: QuerySet, text: str, *, using: str, scan: int) -> tuple[QuerySet, Edge]:
    """`rows` narrowed to the candidates for `text` (folded, storable), and, when the narrowing
    was a bounded scan that stopped before the window's end, the position it stopped at."""
    connection = connections[using]
    if connection.vendor == "sqlite" and len(text) >= FTS_MIN_CHARS and fts_ready(using):
        found = fts_rowids(using, text, limit=PROBE + 1)
        if len(found) <= PROBE:
            return rows.filter(seq__in=found), None
        rows, edge = bounded(rows, scan)
        return rows.filter(search_text__contains=text), edge
    if connection.vendor == "postgresql" and pg_indexed(using, text):
        return rows.filter(search_text__contains=text), None
    rows, edge = bounded(rows, scan)
    return rows.filter(search_text__contains=text), edge


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
    marks = ", ".join(["%s"] * len(FTS_OBJECTS))
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM sqlite_master WHERE name IN ({marks})", FTS_OBJECTS)
        return cursor.fetchone()[0] == len(FTS_OBJECTS)


def fts_rowids(using: str, text: str, *, limit: int) -> list[int]:
    """The seqs of up to `limit` events whose search text holds `text`: one FTS5 phrase (the
    text quoted, its quotes doubled: nothing inside an FTS5 string is syntax)."""
    phrase = '"' + text.replace('"', '""') + '"'
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s LIMIT %s", [phrase, limit]
        )
        return [row[0] for row in cursor.fetchall()]


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
