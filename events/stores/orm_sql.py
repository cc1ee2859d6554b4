"""The few statements of the ORM store's ingest path, in SQL both SQLite and PostgreSQL run.

Why raw SQL: a batch of 10 events through `bulk_create` + a read-back + one UPDATE per job cost
about four times the bare write. `INSERT ... ON CONFLICT DO NOTHING RETURNING` tells in the same
statement which rows this call inserted (SQLite >= 3.35, PostgreSQL), and one
`INSERT ... ON CONFLICT (id) DO UPDATE` writes every touched job's summary at once. Names are
quoted with `quote_name`, values always bound, and each value is prepared by its model field
(`get_db_prep_save`), so dates and JSON are stored exactly as the ORM stores them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

# Rows per statement: well under SQLite's 32,766 bound parameters for the widest table.
CHUNK = 500
# Values of these fields go to the driver as they are (str, int, None); the others (dates, JSON,
# UUIDs) are prepared by their field, unless None (NULL everywhere). Skipping the no-op
# preparations saves about a fifth of the ingest time on SQLite.
PLAIN_FIELDS = {"CharField", "TextField", "PositiveIntegerField", "BigAutoField", "ForeignKey"}


def insert_new(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: str,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert the rows whose `conflict` column is new; returns `returning` of those inserted."""
    tail = f" ON CONFLICT ({_q(connection, conflict)}) DO NOTHING"
    if returning:
        tail += " RETURNING " + ", ".join(_q(connection, name) for name in returning)
    return _insert(connection, model, columns, rows, tail, fetch=bool(returning))


def upsert(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: str,
    update: Sequence[str],
) -> None:
    """Insert the rows, or overwrite the `update` columns of those whose `key` exists."""
    names = [_q(connection, model._meta.get_field(name).column) for name in update]
    sets = ", ".join(f"{name} = excluded.{name}" for name in names)
    tail = f" ON CONFLICT ({_q(connection, key)}) DO UPDATE SET {sets}"
    _insert(connection, model, columns, rows, tail, fetch=False)


def _insert(connection, model, columns, rows, tail: str, *, fetch: bool) -> list[tuple]:
    fields = [model._meta.get_field(name) for name in columns]
    names = ", ".join(_q(connection, field.column) for field in fields)
    head = f"INSERT INTO {_q(connection, model._meta.db_table)} ({names}) VALUES "
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    preps = [_preparer(field, connection) for field in fields]
    found: list[tuple] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(rows):
            params = [
                prep(value) if prep and value is not None else value
                for row in chunk
                for prep, value in zip(preps, row, strict=True)
            ]
            cursor.execute(head + ", ".join([one] * len(chunk)) + tail, params)
            if fetch:
                found.extend(cursor.fetchall())
    return found


def _preparer(field: Field, connection: BaseDatabaseWrapper) -> Callable[[Any], Any] | None:
    if field.get_internal_type() in PLAIN_FIELDS:
        return None
    return functools.partial(field.get_db_prep_save, connection=connection)


def _chunks(rows: Sequence[Sequence[Any]]) -> Iterator[Sequence[Sequence[Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _q(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)
