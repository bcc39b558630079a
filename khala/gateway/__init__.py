"""The gateway node: the HTTP API of seed 004 (Flask app factory) served by gunicorn."""

from khala.gateway.app import create_app

__all__ = ["create_app"]
