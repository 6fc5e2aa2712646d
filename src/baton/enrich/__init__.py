"""Enrichment: the context a ticket gains before the decision (accounts, later text signals)."""
