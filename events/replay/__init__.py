"""Replay: put an event, or a job's events, back on an EventBridge bus
(events/README.md)."""
