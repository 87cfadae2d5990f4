"""The apiward server: REST API, web console and live ingestion over one
state directory (``apiward serve``; see ``docs/server.md``)."""

from apiward.serve.app import create_app

__all__ = ["create_app"]
