"""Pure encoders: an Alert in, the bytes or document a receiver expects out (no I/O)."""
