"""I/O of the systemd collector: the D-Bus connection, the journal, the state file."""
