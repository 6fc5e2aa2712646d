"""Baton: the execution layer for support escalations."""

__version__ = "0.1.0"
