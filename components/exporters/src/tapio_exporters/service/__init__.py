"""The exporter service: NATS consumers (correlations -> alerts, one per sink), settings, start-up."""
