"""Shared runtime of every Tapio component: config, logging, metrics, NATS, models."""
