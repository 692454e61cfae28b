"""``GET /generator/metrics``: one tenant's generated series for a Prometheus scraper.

Owns the route and its content negotiation: Prometheus text format 0.0.4 by default,
OpenMetrics 1.0 with exemplars (``traceID``) when the scraper's ``Accept`` asks for
``application/openmetrics-text``. The tenant comes from ``X-Scope-OrgID`` (``single-tenant``
when multitenancy is off). Also owns ``attach``: the app's construction step wraps its HTTP
server start so the route is added to the API application (the one serving ``/ready``)
before aiohttp freezes its router.
"""

from __future__ import annotations

from aiohttp import web

from threadline.api.common import tenant_of
from threadline.generator import MetricsGenerator

PATH = "/generator/metrics"
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class GeneratorMetricsRoutes:
    def __init__(self, generator: MetricsGenerator, multitenancy_enabled: bool) -> None:
        self.generator = generator
        self.multitenancy_enabled = multitenancy_enabled

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.metrics)]

    async def metrics(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        openmetrics = "application/openmetrics-text" in request.headers.get("Accept", "")
        body = self.generator.render(tenant, openmetrics)
        return web.Response(
            body=body.encode(), headers={"Content-Type": OPENMETRICS if openmetrics else TEXT}
        )
