"""Pure core of the CNI collector: netlink wire format, counter deltas, thresholds, CNI configuration, events."""
