"""Sink adapters: deliver a batch of alerts to one receiver and return only once it confirmed."""
