"""I/O of the CNI collector: the rtnetlink socket, /proc (namespaces, cgroups) and the CNI configuration directory."""
