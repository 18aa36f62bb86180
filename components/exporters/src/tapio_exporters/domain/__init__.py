"""The pure core of the exporter: alerts from correlations and their lifecycle (no I/O, no clock)."""
