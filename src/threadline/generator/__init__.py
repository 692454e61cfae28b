"""The metrics generator: Tempo-compatible span metrics and service graphs from ingested spans.

``MetricsGenerator`` (generator.py) is what the app builds: its ``consume`` is registered as the
distributor's batch consumer, ``start``/``stop`` run its background tasks. Per-tenant series
live in ``registry.Registry``; ``span_metrics`` and ``service_graphs`` are the processors;
``remote_write`` sends the series to Prometheus.
"""

from threadline.generator.generator import MetricsGenerator

__all__ = ["MetricsGenerator"]
