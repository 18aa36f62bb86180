"""Receivers the exporter's tests deliver to: protocol-faithful local Splunk HEC and Elasticsearch
`_bulk` servers, and launchers of the real rsyslog and Prometheus Alertmanager."""
