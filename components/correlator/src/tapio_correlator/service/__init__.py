"""The correlator's NATS runner: durable consumer in, correlations out, restart-safe state."""
