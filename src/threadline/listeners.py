"""The ports a target listens on, and checking all of them before any is opened.

Every listener binds its port exclusively (no SO_REUSEPORT, gRPC included), so a second server
cannot quietly take a share of another's traffic. ``check_free`` tries every port first and
reports every conflict at once, naming the receiver and the flag and config key that set it,
before the process writes anything.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass

from threadline.config import Config


@dataclass(frozen=True, slots=True)
class Listener:
    what: str
    port: int
    flag: str
    key: str
    udp: bool = False


class PortsInUse(OSError):
    """Ports another process holds; the message lists each with what sets it."""


_RECEIVERS = "distributor.receivers"
# what listens, the flag and the config key that set its port, and whether it is UDP
_ALL = (
    ("HTTP API", "--http-port", "server.http_port", False),
    ("OTLP gRPC receiver", "--otlp-grpc-port", f"{_RECEIVERS}.otlp.grpc_port", False),
    ("OTLP HTTP receiver", "--otlp-http-port", f"{_RECEIVERS}.otlp.http_port", False),
    ("Zipkin receiver", "--zipkin-port", f"{_RECEIVERS}.zipkin.port", False),
    (
        "Jaeger thrift HTTP receiver",
        "--jaeger-thrift-http-port",
        f"{_RECEIVERS}.jaeger.thrift_http_port",
        False,
    ),
    ("Jaeger gRPC receiver", "--jaeger-grpc-port", f"{_RECEIVERS}.jaeger.grpc_port", False),
    ("OpenCensus receiver", "--opencensus-port", f"{_RECEIVERS}.opencensus.port", False),
    (
        "Jaeger agent (compact thrift)",
        "--jaeger-agent-compact-port",
        f"{_RECEIVERS}.jaeger.thrift_compact_port",
        True,
    ),
    (
        "Jaeger agent (binary thrift)",
        "--jaeger-agent-binary-port",
        f"{_RECEIVERS}.jaeger.thrift_binary_port",
        True,
    ),
    ("Jaeger remote sampling", "--sampling-port", "sampling.port", False),
)


def listeners(cfg: Config) -> list[Listener]:
    """The listeners ``cfg`` turns on (port 0 = off); the compactor target has only HTTP."""
    out = []
    for what, flag, key, udp in _ALL[:1] if cfg.target == "compactor" else _ALL:
        port = functools.reduce(getattr, key.split("."), cfg)
        if port and not (udp and cfg.auth.enabled):  # no UDP agent with auth (no credentials)
            out.append(Listener(what, port, flag, key, udp))
    return out


def _bind_error(host: str, item: Listener) -> OSError | None:
    kind = socket.SOCK_DGRAM if item.udp else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        if not item.udp:
            # as the servers bind: a port left in TIME_WAIT is free, a listening one is not
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, item.port))
        except OSError as e:
            return e
    return None


def check_free(cfg: Config) -> None:
    """Raise ``PortsInUse`` listing every configured port that cannot be bound."""
    host = cfg.server.host
    items = listeners(cfg)
    problems = []
    seen: dict[tuple[int, bool], Listener] = {}
    for item in items:
        twin = seen.setdefault((item.port, item.udp), item)
        if twin is not item:
            problems.append(
                f"  {host}:{item.port} is configured twice: {twin.what} ({twin.flag}, {twin.key}) "
                f"and {item.what} ({item.flag}, {item.key})"
            )
            continue
        err = _bind_error(host, item)
        if err is not None:
            reason = (err.strerror or str(err)).lower()
            proto = "udp" if item.udp else "tcp"
            problems.append(
                f"  {host}:{item.port}/{proto} ({reason}): {item.what}, set by {item.flag} or "
                f"config key {item.key}"
            )
    if problems:
        raise PortsInUse(
            "cannot start: address already in use or not available:\n"
            + "\n".join(problems)
            + "\nstop the process that holds them, or choose other ports (0 turns a receiver off)"
        )
