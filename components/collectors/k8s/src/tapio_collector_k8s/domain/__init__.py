"""Pure core of the Kubernetes collector: object digests, semantic actions, owner chains, event
building. No I/O, no clock (time is passed in)."""
