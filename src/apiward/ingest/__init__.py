"""Ingest: readers that turn traffic formats into :class:`ApiCall` events,
actor resolution, and live capture (proxy, middleware)."""
