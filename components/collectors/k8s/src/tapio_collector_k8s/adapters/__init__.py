"""I/O of the Kubernetes collector: the API client (raw JSON list/watch), Lease, state files."""
