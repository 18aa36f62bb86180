"""Pure core of the systemd collector: unit states, filters, transition detection, event building.

No I/O here (no D-Bus, no journal, no files, no clock): the adapters feed it what systemd said.
"""
