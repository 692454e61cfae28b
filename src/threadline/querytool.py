"""``threadline query``: run a search against a server or straight from storage and print the
matching traces as a table (or the API's JSON).

Offline, the blocks are read from the backend ``storage.trace`` configures (local directory, S3,
GCS, Azure), opened by the same factory as the server's, and the spans still only in the WAL of
the data directory are replayed read-only, so a running server may own both."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from threadline.config import Config
from threadline.ingester.ingester import Ingester
from threadline.querier.search import SearchEngine, SearchWindow, search_response
from threadline.querier.sources import DataSources
from threadline.selfmetrics import SelfMetrics
from threadline.storage.factory import local_blocks_dir
from threadline.storage.tool import open_blocklist
from threadline.tenancy import HEADER


class QueryToolError(Exception):
    pass


def search_url(url: str, query: str, limit: int, tenant: str | None) -> dict[str, Any]:
    params = urllib.parse.urlencode({"q": query, "limit": limit})
    request = urllib.request.Request(f"{url.rstrip('/')}/api/search?{params}")
    if tenant:
        request.add_header(HEADER, tenant)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise QueryToolError(f"{e.code}: {e.read().decode(errors='replace').strip()}") from None
    except urllib.error.URLError as e:
        raise QueryToolError(f"cannot reach {url}: {e.reason}") from None


def search_storage(
    cfg: Config, query: str, limit: int, tenant: str, warn: Callable[[str], None]
) -> dict[str, Any]:
    """Search the blocks of the configured backend and the WAL of ``cfg.data_dir``, read-only;
    ``warn`` is told when there is nothing of ``tenant`` to search."""
    from threadline.traceql.plan import compile_search

    blocks_dir = local_blocks_dir(cfg)
    if blocks_dir is not None and not cfg.data_dir.is_dir() and not blocks_dir.is_dir():
        raise QueryToolError(f"there is no data directory at {cfg.data_dir.resolve()}")
    try:
        blocklist = open_blocklist(cfg)
    except OSError as e:  # the backend cannot be listed (unreachable, no such bucket, ...)
        raise QueryToolError(f"cannot list the {cfg.storage.trace.backend} backend: {e}") from None
    ingester = Ingester(cfg, blocklist, SelfMetrics(), cfg.data_dir / "wal")
    ingester.replay(repair=False)
    if not blocklist.blocks(tenant) and tenant not in ingester.tenants:
        where = blocks_dir.resolve() if blocks_dir else blocklist.backend.describe()
        others = sorted(set(blocklist.tenants_in_backend()) | set(ingester.tenants))
        warn(
            f"no spans of tenant {tenant!r}: no blocks in {where} and none in the WAL of "
            f"{cfg.data_dir.resolve()}"
            + (f" (tenants there: {', '.join(others)}; choose one with --tenant)" if others else "")
        )
    engine = SearchEngine(DataSources(ingester, blocklist))
    result = asyncio.run(engine.search(tenant, compile_search(query), SearchWindow(), limit, 3))
    return search_response(result)


def format_table(doc: dict[str, Any]) -> str:
    header = ("TRACE ID", "ROOT SERVICE", "ROOT NAME", "START (UTC)", "DURATION", "MATCHED")
    rows = [header]
    for t in doc.get("traces", []):
        start = dt.datetime.fromtimestamp(int(t["startTimeUnixNano"]) / 1e9, tz=dt.UTC)
        matched = sum(ss.get("matched", 0) for ss in t.get("spanSets", []))
        rows.append(
            (
                t["traceID"].rjust(32, "0"),
                t.get("rootServiceName", ""),
                t.get("rootTraceName", ""),
                start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                f"{t.get('durationMs', 0)}ms",
                str(matched),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if len(rows) == 1:
        lines.append("(no trace matches)")
    return "\n".join(lines)


def logs_url(
    url: str, query: str, start_ns: int, end_ns: int, limit: int, tenant: str | None
) -> dict[str, Any]:
    """Loki's ``query_range`` answer of a running server."""
    params = urllib.parse.urlencode(
        {"query": query, "start": start_ns, "end": end_ns, "limit": limit}
    )
    request = urllib.request.Request(f"{url.rstrip('/')}/loki/api/v1/query_range?{params}")
    if tenant:
        request.add_header(HEADER, tenant)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["data"]
    except urllib.error.HTTPError as e:
        raise QueryToolError(f"{e.code}: {e.read().decode(errors='replace').strip()}") from None
    except urllib.error.URLError as e:
        raise QueryToolError(f"cannot reach {url}: {e.reason}") from None


def logs_storage(
    cfg: Config, query: str, start_ns: int, end_ns: int, limit: int, tenant: str
) -> dict[str, Any]:
    """The same answer read from storage: the log blocks and, read-only, the logs' WAL."""
    import numpy as np

    from threadline.logql import ast, parse
    from threadline.logstore.store import LogStore
    from threadline.querier.logql import Evaluator, loki_matrix, loki_streams
    from threadline.storage.factory import make_backend

    if local_blocks_dir(cfg) is not None and not cfg.data_dir.is_dir():
        raise QueryToolError(f"there is no data directory at {cfg.data_dir.resolve()}")
    store = LogStore(cfg, make_backend(cfg), cfg.data_dir / "wal-logs")
    store.start(read_only=True)
    expr = parse(query)
    evaluator = Evaluator(lambda lo, hi: store.between(tenant, lo, hi))
    if isinstance(expr, ast.LogQuery):
        lines = evaluator.lines(expr, start_ns, end_ns)
        return {"resultType": "streams", "result": loki_streams(lines, limit, forward=False)}
    steps = np.arange(start_ns, end_ns + 1, max(10**9, (end_ns - start_ns) // 250), dtype=np.int64)
    return {"resultType": "matrix", "result": loki_matrix(evaluator.metric(expr, steps), steps)}


def format_logs(doc: dict[str, Any]) -> str:
    """Log lines newest first (time, labels, line), or a metric's series, as text."""
    out = []
    if doc["resultType"] == "streams":
        rows = [
            (int(ts), stream["stream"], line)
            for stream in doc["result"]
            for ts, line in stream["values"]
        ]
    else:
        for series in doc["result"]:
            labels = ", ".join(f'{k}="{v}"' for k, v in sorted(series["metric"].items()))
            out.append("{" + labels + "}")
            for t, v in series["values"]:
                when = dt.datetime.fromtimestamp(
                    float(t) / (1e9 if float(t) > 1e12 else 1), tz=dt.UTC
                )
                out.append(f"  {when:%Y-%m-%d %H:%M:%S}  {v}")
        return "\n".join(out)
    rows.sort(key=lambda r: -r[0])
    for ns, labels, line in rows:
        when = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
        service = labels.get("service_name", "")
        out.append(f"{when:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f"  {service:<16} {line}")
    return "\n".join(out)
