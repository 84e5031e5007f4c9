"""Agora's Superset dashboards kept as code; see docs/dashboards.md."""
