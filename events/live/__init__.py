"""The live stream: channel groups, broadcasting new events, the socket consumers
and their connection rows (events/README.md)."""
