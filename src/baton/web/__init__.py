"""The HTTP surface: API, auth and the dashboard."""
