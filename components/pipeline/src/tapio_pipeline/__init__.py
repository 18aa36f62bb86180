"""Pipeline processor."""
