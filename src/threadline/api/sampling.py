"""Jaeger remote sampling: per-service strategies from the config, in Jaeger's JSON.

Served on the sampling port (``/``, ``/sampling`` and ``/api/sampling``, as Jaeger's agent and
collector do) and under ``/jaeger/api/sampling`` on the API port. A service without its own
strategy gets the default one; the default's per-operation strategies also apply to services
that sample probabilistically, as in Jaeger.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from threadline.config import OperationStrategy, SamplingConfig


def _probabilistic(rate: float) -> dict[str, Any]:
    return {"samplingRate": rate}


def strategy_for(cfg: SamplingConfig, service: str) -> dict[str, Any]:
    """The strategy response for ``service``."""
    chosen = next((s for s in cfg.service_strategies if s.service == service), None)
    kind = chosen.type if chosen else cfg.default_strategy.type
    param = chosen.param if chosen else cfg.default_strategy.param
    if kind == "ratelimiting":
        return {
            "strategyType": "RATE_LIMITING",
            "rateLimitingSampling": {"maxTracesPerSecond": int(param)},
        }
    doc: dict[str, Any] = {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": _probabilistic(param),
    }
    operations: dict[str, OperationStrategy] = {
        o.operation: o for o in cfg.default_strategy.operation_strategies
    }
    if chosen:
        operations.update({o.operation: o for o in chosen.operation_strategies})
    if operations:
        doc["operationSampling"] = {
            "defaultSamplingProbability": param,
            "defaultLowerBoundTracesPerSecond": cfg.default_lower_bound_traces_per_second,
            "perOperationStrategies": [
                {"operation": o.operation, "probabilisticSampling": _probabilistic(o.param)}
                for o in operations.values()
            ],
            "defaultUpperBoundTracesPerSecond": cfg.default_upper_bound_traces_per_second,
        }
    return doc


class SamplingRoutes:
    def __init__(self, cfg: SamplingConfig) -> None:
        self.cfg = cfg

    def routes(self, paths: tuple[str, ...]) -> list[web.RouteDef]:
        return [web.get(path, self.strategy) for path in paths]

    async def strategy(self, request: web.Request) -> web.Response:
        services = request.query.getall("service", [])
        if len(services) != 1 or not services[0]:
            raise web.HTTPBadRequest(text="'service' parameter must be provided once")
        body = orjson.dumps(strategy_for(self.cfg, services[0]))
        return web.Response(body=body, content_type="application/json")
