"""The ORM store (SQLite, PostgreSQL): one backend of the store protocol
(events.stores.base)."""
