"""I/O of the eBPF collector: bcc (compile, attach, maps, ring buffer), tracefs, BTF, cgroupfs."""
