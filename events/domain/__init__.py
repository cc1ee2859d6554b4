"""Pure domain code over plain data: parsing, correlation, summaries, timelines,
architecture, fleet health, schemas and the API's JSON shapes. The lowest layer: it imports
no other layer, no ORM, no boto3 and no channels (events/README.md)."""
