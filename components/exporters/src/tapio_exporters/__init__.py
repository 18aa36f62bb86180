"""SIEM exporter."""
