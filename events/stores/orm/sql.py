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
    conflict: Sequence[str],
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert the rows whose `conflict` columns are new; returns `returning` of those inserted."""
    tail = f" ON CONFLICT ({', '.join(_q(connection, name) for name in conflict)}) DO NOTHING"
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


def select_locked(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    columns: Sequence[str],
    *,
    key: str,
    keys: Sequence[Any],
) -> list[tuple]:
    """`columns` of the rows whose `key` is in `keys`, locked until the transaction ends where
    the database can lock rows (PostgreSQL; SQLite's write transaction locks everything).

    What `select_for_update().filter(key__in=keys).values_list(*columns)` returns, converted
    by the same field and backend converters, without building a queryset each batch (that
    was a quarter of the ORM store's ingest time on SQLite).
    """
    if not keys:
        return []
    table = model._meta.db_table
    cols = [model._meta.get_field(name).get_col(table) for name in columns]
    names = ", ".join(_q(connection, col.target.column) for col in cols)
    marks = ", ".join(["%s"] * len(keys))
    where = f"{_q(connection, model._meta.get_field(key).column)} IN ({marks})"
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT {names} FROM {_q(connection, table)} WHERE {where}{lock}"
    converters = [
        connection.ops.get_db_converters(col) + col.get_db_converters(connection) for col in cols
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, list(keys))
        rows = cursor.fetchall()
    return [
        tuple(
            _convert(value, col, col_converters, connection)
            for value, col, col_converters in zip(row, cols, converters, strict=True)
        )
        for row in rows
    ]


def _convert(value: Any, col: Any, converters: list[Callable], connection) -> Any:
    for converter in converters:
        value = converter(value, col, connection)
    return value


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
