"""Use cases that tie the pure core to storage and channels: ingest, dispatch, timers, flows."""
