"""The DynamoDB store: one backend of the store protocol
(events.stores.base)."""
