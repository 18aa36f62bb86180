"""Kubernetes collector."""
