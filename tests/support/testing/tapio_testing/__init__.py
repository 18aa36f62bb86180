"""Test helpers: real JetStream (container or binary engine) for tests and benchmarks, pytest plugin."""
