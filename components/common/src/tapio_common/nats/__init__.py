"""NATS adapters shared by every component: connection factory and the embedded JetStream server."""
