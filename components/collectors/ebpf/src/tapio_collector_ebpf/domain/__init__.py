"""Pure core of the eBPF collector: raw kernel records in, events and decisions out (no I/O)."""
