"""Khala: a distributed judge cluster."""

__version__ = "0.1.0"
