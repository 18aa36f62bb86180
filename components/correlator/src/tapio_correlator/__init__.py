"""Correlator: turns causally linked events into one correlation per root cause."""
