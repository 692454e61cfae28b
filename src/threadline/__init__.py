"""threadline: a distributed-tracing backend (OTLP in, Parquet blocks, Tempo-compatible API)."""

__version__ = "0.1.0"
