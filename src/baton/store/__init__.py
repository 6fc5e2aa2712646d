"""Persistence: schema, database opening, and the queries the engine runs."""
