"""Counting for Prometheus: the registry `/metrics` answers and `build --metrics-file` writes."""
