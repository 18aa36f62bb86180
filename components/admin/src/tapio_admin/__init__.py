"""tapio-admin: operator commands for Tapio's NATS JetStream topology (streams apply / status)."""
