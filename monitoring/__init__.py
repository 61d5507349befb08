"""Observability layer: Prometheus metric objects and drift binning (no Flask routes here)."""
