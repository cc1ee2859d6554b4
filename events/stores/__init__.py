"""Storage backends behind one protocol, chosen by `EDOBS_STORE` (DESIGN section 4)."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from events.stores.base import Page, Store, StoreRefused, StoreUnavailable

BACKENDS = {
    "orm": "events.stores.orm.store.OrmStore",
    "dynamodb": "events.stores.dynamodb.store.DynamoStore",
}

__all__ = ["BACKENDS", "Page", "Store", "StoreRefused", "StoreUnavailable", "get_store"]

_stores: dict[str, Store] = {}


def get_store() -> Store:
    """The active store, made once per backend name (settings may change in tests)."""
    name = settings.EDOBS_STORE
    if name not in _stores:
        _stores[name] = import_string(BACKENDS[name])()
    return _stores[name]


def reset_stores() -> None:
    _stores.clear()
