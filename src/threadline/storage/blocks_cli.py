"""The ``threadline blocks`` command group (registered on the main CLI)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from threadline.config import Config, ConfigError, load_config
from threadline.storage.backend import BackendError


def tool_config(config_path: Path | None, data_dir: Path | None) -> Config:
    """The server's config for an offline tool; a bad config exits with status 2."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    try:
        return load_config(config_path, overrides)
    except ConfigError as e:
        click.echo(f"threadline: {e}", err=True)
        sys.exit(2)


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        help="Data directory (its blocks/ with the local backend).",
    )(f)
    f = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        help="YAML config file (storage.trace selects the backend).",
    )(f)
    return f


def _fail(e: Exception) -> None:
    click.echo(f"threadline: {e}", err=True)
    sys.exit(1)


@click.group()
def blocks() -> None:
    """List, inspect, verify and compact stored blocks."""


@blocks.command("list")
@_common
@click.option("--tenant", help="Only this tenant.")
@click.option("--compacted", is_flag=True, help="Also list blocks marked compacted.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def list_blocks(
    config_path: Path | None,
    data_dir: Path | None,
    tenant: str | None,
    compacted: bool,
    as_json: bool,
) -> None:
    """Blocks per tenant: state, compaction level, time range, spans, traces, size."""
    from threadline.storage.tool import block_rows, format_rows, open_blocklist

    try:
        rows = block_rows(open_blocklist(tool_config(config_path, data_dir)), tenant, compacted)
    except (BackendError, OSError) as e:
        _fail(e)
        return
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
    else:
        click.echo(format_rows(rows))


@blocks.command("inspect")
@_common
@click.argument("block_id")
@click.option("--tenant", help="The block's tenant (default: search all).")
def inspect(
    config_path: Path | None, data_dir: Path | None, block_id: str, tenant: str | None
) -> None:
    """One block's meta and Parquet schema, as JSON (BLOCK_ID may be a unique prefix)."""
    from threadline.storage.tool import find_block, inspect_block, open_blocklist

    try:
        block = find_block(open_blocklist(tool_config(config_path, data_dir)), block_id, tenant)
        doc = inspect_block(block)
    except (LookupError, BackendError, OSError) as e:
        _fail(e)
        return
    click.echo(json.dumps(doc, indent=2))


@blocks.command("verify")
@_common
@click.argument("block_ids", nargs=-1)
@click.option("--tenant", help="Only this tenant.")
def verify(
    config_path: Path | None, data_dir: Path | None, block_ids: tuple[str, ...], tenant: str | None
) -> None:
    """Check blocks (all, or BLOCK_IDS): file checksums recorded in meta, Parquet footer and
    row-group index, and that every row's trace id is in the bloom filter. Exits 1 on a
    problem."""
    from threadline.storage.tool import find_block, open_blocklist, verify_block

    try:
        blocklist = open_blocklist(tool_config(config_path, data_dir))
        if block_ids:
            targets = [find_block(blocklist, b, tenant) for b in block_ids]
        else:
            tenants = [tenant] if tenant else blocklist.tenants_in_backend()
            targets = [b for t in tenants for b in blocklist.all_live(t)]
    except (LookupError, BackendError, OSError) as e:
        _fail(e)
        return
    bad = 0
    for block in targets:
        verdict = verify_block(block)
        if verdict.ok:
            click.echo(f"ok   {verdict.tenant}/{verdict.block_id} ({', '.join(verdict.checked)})")
        else:
            bad += 1
            for problem in verdict.problems:
                click.echo(f"FAIL {verdict.tenant}/{verdict.block_id}: {problem}")
    click.echo(f"{len(targets)} blocks verified, {bad} with problems")
    if bad:
        sys.exit(1)


@blocks.command("compact")
@_common
@click.option("--tenant", help="Only this tenant.")
@click.option(
    "--retention/--no-retention",
    default=False,
    help="Also apply block_retention and delete compacted blocks past their grace period.",
)
def compact(
    config_path: Path | None, data_dir: Path | None, tenant: str | None, retention: bool
) -> None:
    """Run compaction now (as the compactor would), until no job is left."""
    from threadline.compactor.compactor import Compactor
    from threadline.dirlock import DirectoryInUse, own_directories
    from threadline.storage.tool import open_blocklist

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    cfg = tool_config(config_path, data_dir)
    try:
        # it stages blocks in the data directory and compacts: a server there must not run
        locks = own_directories(cfg, compacts=True)
    except DirectoryInUse as e:
        _fail(e)
        return
    try:
        blocklist = open_blocklist(cfg, builder=True)
        compactor = Compactor(cfg, blocklist)
        report = compactor.run_cycle(
            tenants=[tenant] if tenant else None, retention=retention, cleanup=retention
        )
    except (BackendError, OSError) as e:
        _fail(e)
        return
    finally:
        for lock in locks:
            lock.release()
    click.echo(
        json.dumps(
            {
                "compactions": report.compactions,
                "blocksIn": report.blocks_in,
                "spansIn": report.spans_in,
                "duplicatesDropped": report.duplicates_dropped,
                "blocksOut": report.outputs,
                "expired": report.expired,
                "deleted": report.deleted,
                "seconds": round(report.seconds, 3),
            },
            indent=2,
        )
    )
