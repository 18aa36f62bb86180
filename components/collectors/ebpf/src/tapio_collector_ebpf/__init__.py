"""eBPF collector."""
