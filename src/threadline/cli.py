"""The ``threadline`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from threadline.config import ConfigError, load_config


@click.group()
@click.version_option(package_name="threadline")
def main() -> None:
    """threadline: a distributed-tracing backend."""


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="YAML config file (every flag has a key there; flags win).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Where WAL and blocks live (default ./data); one server per directory.",
)
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--http-port", type=int, help="Tempo API, /metrics, /ready (default 3200).")
@click.option("--otlp-grpc-port", type=int, help="OTLP/gRPC receiver (default 4317, 0 = off).")
@click.option("--otlp-http-port", type=int, help="OTLP/HTTP receiver (default 4318, 0 = off).")
@click.option("--zipkin-port", type=int, help="Zipkin receiver (default 9411, 0 = off).")
@click.option("--jaeger-thrift-http-port", type=int, help="Jaeger thrift HTTP (default 14268).")
@click.option("--jaeger-grpc-port", type=int, help="Jaeger gRPC collector (default 14250).")
@click.option(
    "--jaeger-agent-compact-port", type=int, help="Jaeger agent UDP compact thrift (default 6831)."
)
@click.option(
    "--jaeger-agent-binary-port", type=int, help="Jaeger agent UDP binary thrift (default 6832)."
)
@click.option(
    "--opencensus-port", type=int, help="OpenCensus agent trace receiver (default 0 = off; 55678)."
)
@click.option("--sampling-port", type=int, help="Jaeger remote sampling HTTP (default 5778).")
@click.option(
    "--multitenancy/--no-multitenancy",
    default=None,
    help="Require X-Scope-OrgID on requests (default off).",
)
@click.option(
    "--target",
    type=click.Choice(["all", "compactor"]),
    default=None,
    help="What to run: all (default) or only the compactor over the shared storage.",
)
@click.option("--log-level", default="info", show_default=True)
def serve(
    config_path: Path | None,
    data_dir: Path | None,
    host: str | None,
    http_port: int | None,
    otlp_grpc_port: int | None,
    otlp_http_port: int | None,
    zipkin_port: int | None,
    jaeger_thrift_http_port: int | None,
    jaeger_grpc_port: int | None,
    jaeger_agent_compact_port: int | None,
    jaeger_agent_binary_port: int | None,
    opencensus_port: int | None,
    sampling_port: int | None,
    multitenancy: bool | None,
    target: str | None,
    log_level: str,
) -> None:
    """Run the whole system in one process (or one target of it)."""
    overrides: dict[str, Any] = {}
    if target is not None:
        overrides["target"] = target
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    if multitenancy is not None:
        overrides["multitenancy_enabled"] = multitenancy
    server = {k: v for k, v in (("host", host), ("http_port", http_port)) if v is not None}
    if server:
        overrides["server"] = server
    otlp = {
        k: v
        for k, v in (("grpc_port", otlp_grpc_port), ("http_port", otlp_http_port))
        if v is not None
    }
    jaeger = {
        k: v
        for k, v in (
            ("thrift_http_port", jaeger_thrift_http_port),
            ("grpc_port", jaeger_grpc_port),
            ("thrift_compact_port", jaeger_agent_compact_port),
            ("thrift_binary_port", jaeger_agent_binary_port),
        )
        if v is not None
    }
    receivers: dict[str, Any] = {}
    if otlp:
        receivers["otlp"] = otlp
    if zipkin_port is not None:
        receivers["zipkin"] = {"port": zipkin_port}
    if jaeger:
        receivers["jaeger"] = jaeger
    if opencensus_port is not None:
        receivers["opencensus"] = {"port": opencensus_port}
    if receivers:
        overrides["distributor"] = {"receivers": receivers}
    if sampling_port is not None:
        overrides["sampling"] = {"port": sampling_port}
    try:
        cfg = load_config(config_path, overrides)
    except ConfigError as e:
        click.echo(f"threadline: {e}", err=True)
        sys.exit(2)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from threadline.app import serve as run_server
    from threadline.dirlock import DirectoryInUse

    try:
        asyncio.run(run_server(cfg))
    except (OSError, DirectoryInUse, ConfigError) as e:
        click.echo(f"threadline: {e}", err=True)
        sys.exit(1)


def _source_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--url`` (a running server) or ``--data-dir`` / ``--config`` (storage, read-only)."""
    for option in reversed(
        (
            click.option("--url", help="A running server's HTTP API, e.g. http://localhost:3200."),
            click.option(
                "--data-dir",
                type=click.Path(path_type=Path),
                help="Read storage directly: this data directory (its WAL, read-only, and "
                "blocks/ with the local backend).",
            ),
            click.option(
                "--config",
                "config_path",
                type=click.Path(path_type=Path),
                help="Read storage directly, as `serve --config` would (storage.trace selects "
                "the backend).",
            ),
        )
    ):
        command = option(command)
    return command


@main.command()
@click.argument("traceql")
@_source_options
@click.option("--tenant", default=None, help="X-Scope-OrgID (default single-tenant).")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
def query(
    traceql: str,
    url: str | None,
    data_dir: Path | None,
    config_path: Path | None,
    tenant: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Search traces with TRACEQL and print them."""
    from threadline.querytool import QueryToolError, format_table, search_storage, search_url
    from threadline.storage.blocks_cli import tool_config
    from threadline.tenancy import SINGLE_TENANT

    offline = data_dir is not None or config_path is not None
    if (url is None) == (not offline):
        raise click.UsageError("give either --url, or --data-dir and/or --config")
    try:
        if url is not None:
            doc = search_url(url, traceql, limit, tenant)
        else:
            cfg = tool_config(config_path, data_dir)
            doc = search_storage(
                cfg,
                traceql,
                limit,
                tenant or SINGLE_TENANT,
                warn=lambda message: click.echo(f"threadline: {message}", err=True),
            )
    except (QueryToolError, ValueError, OSError) as e:
        click.echo(f"threadline: {e}", err=True)
        sys.exit(1)
    click.echo(json.dumps(doc, indent=2) if as_json else format_table(doc))


@main.command()
@click.argument("logql")
@_source_options
@click.option("--since", default="1h", show_default=True, help="How far back to look.")
@click.option("--tenant", default=None, help="X-Scope-OrgID (default single-tenant).")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the answer's JSON.")
def logs(
    logql: str,
    url: str | None,
    data_dir: Path | None,
    config_path: Path | None,
    since: str,
    tenant: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Query log lines with LOGQL and print them (newest first) or a metric's series."""
    import time

    from threadline.config import parse_duration
    from threadline.logql import LogQLParseError
    from threadline.querier.logql import LogQLError
    from threadline.querytool import QueryToolError, format_logs, logs_storage, logs_url
    from threadline.storage.blocks_cli import tool_config
    from threadline.tenancy import SINGLE_TENANT

    offline = data_dir is not None or config_path is not None
    if (url is None) == (not offline):
        raise click.UsageError("give either --url, or --data-dir and/or --config")
    try:
        end = time.time_ns()
        start = end - int(parse_duration(since) * 1e9)
        if url is not None:
            doc = logs_url(url, logql, start, end, limit, tenant)
        else:
            cfg = tool_config(config_path, data_dir)
            doc = logs_storage(cfg, logql, start, end, limit, tenant or SINGLE_TENANT)
    except (QueryToolError, LogQLParseError, LogQLError, ValueError, OSError) as e:
        click.echo(f"threadline: {e}", err=True)
        sys.exit(1)
    click.echo(json.dumps(doc, indent=2) if as_json else format_logs(doc))


@main.group()
def auth() -> None:
    """Credentials for auth.users and auth.users_file."""


@auth.command("token")
def new_token() -> None:
    """Make a random bearer token; prints it and the token_hash to configure."""
    import secrets

    from threadline.auth import hash_token

    token = secrets.token_urlsafe(32)
    click.echo(f"token:      {token}\ntoken_hash: {hash_token(token)}")


@auth.command("hash")
@click.option("--password", "is_password", is_flag=True, help="A basic-auth password.")
def hash_secret(is_password: bool) -> None:
    """Hash a token (or --password) read from standard input, for token_hash/password_hash."""
    from threadline.auth import hash_password, hash_token

    secret = click.prompt("secret", hide_input=True) if sys.stdin.isatty() else sys.stdin.read()
    secret = secret.rstrip("\r\n")
    if not secret:
        raise click.UsageError("an empty secret")
    click.echo(hash_password(secret) if is_password else hash_token(secret))


def _add_blocks_group() -> None:
    from threadline.storage.blocks_cli import blocks

    main.add_command(blocks)


_add_blocks_group()


if __name__ == "__main__":
    main()
