"""Ingest: SQS messages in, envelopes parsed and stored, new events handed to
the live layer; the worker loop and its health (events/README.md)."""
