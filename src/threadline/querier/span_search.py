"""Searches that match single spans: by service, operation, tags and span duration.

This is how Jaeger's and Zipkin's query APIs search (all conditions hold on one span); the
plan returns those spans, one spanset per trace, for the search engine to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from threadline.traceql import sql
from threadline.traceql.plan import Plan

_KINDS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def attribute_equals(key: str, value: str) -> str:
    """True when a span or resource attribute ``key`` has the string form ``value``."""
    literal = sql.string(value)
    alternatives = [
        f"CAST({sql.attr(scope, kind, key)} AS VARCHAR) = {literal}"
        for kind in ("str", "int", "float", "bool")
        for scope in ("span", "resource")
    ]
    return "coalesce(" + " OR ".join(alternatives) + ", false)"


def log_field_equals(key: str, value: str) -> str:
    """True when one of the span's events (Jaeger's logs) has field ``key`` with the string
    form ``value``; the field ``event`` is the event's name, as in Jaeger's JSON."""
    literal = sql.string(value)
    fields = [
        f"CAST(e.attrs_{kind}[{sql.string(key)}] AS VARCHAR) = {literal}"
        for kind in ("str", "int", "float", "bool")
    ]
    if key == "event":
        fields.append(f"e.name = {literal}")
    return f"len(list_filter(events, lambda e: coalesce({' OR '.join(fields)}, false))) > 0"


def tag_condition(key: str, value: str) -> str:
    """A Jaeger tag as a condition, with the OTLP fields those tags stand for; like Jaeger's
    stores, a tag matches a span or process (resource) tag or a log field."""
    if key == "error":
        is_error = "status_code = 2"
        if value.lower() == "true":
            return f"({is_error} OR {attribute_equals(key, value)})"
        return f"(NOT ({is_error}) AND NOT {attribute_equals('error', 'true')})"
    if key == "span.kind" and value.lower() in _KINDS:
        return f"kind = {_KINDS[value.lower()]}"
    if key == "otel.status_code" and value.upper() in ("OK", "ERROR", "UNSET"):
        return f"status_code = {('UNSET', 'OK', 'ERROR').index(value.upper())}"
    return f"({attribute_equals(key, value)} OR {log_field_equals(key, value)})"


@dataclass
class SpanQuery:
    service: str | None = None
    operation: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    # extra SQL conditions on the span (protocol-specific, e.g. Zipkin's annotationQuery)
    conditions: list[str] = field(default_factory=list)

    def plan(self) -> Plan:
        cond = ["true", *self.conditions]
        if self.service:
            cond.append(f"service_name = {sql.string(self.service)}")
        if self.operation:
            cond.append(f"name = {sql.string(self.operation)}")
        for key, value in self.tags.items():
            cond.append(tag_condition(key, value))
        if self.min_duration_ns is not None:
            cond.append(f"duration_nano >= {int(self.min_duration_ns)}")
        if self.max_duration_ns is not None:
            cond.append(f"duration_nano <= {int(self.max_duration_ns)}")
        return Plan(
            "SELECT trace_id, '' AS sset, rid, NULL AS labels FROM base WHERE " + " AND ".join(cond)
        )
