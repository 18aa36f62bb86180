"""CNI collector."""
