"""Reads scoped to what the user's team may see (visible_accounts): the only way
pages, the API, sockets and alerts read the store (events/README.md)."""
