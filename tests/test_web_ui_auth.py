"""The web UI with authentication and tenants on: the browser is challenged for basic auth and
then reads only what the credential allows; a credential for several tenants is asked which
one (``X-Scope-OrgID``), and the UI reads as the tenant picked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from conftest import Server
from otel_helpers import make_trace, send, trace_hex
from threadline.auth import hash_password
from ui_browser import launch, open_page, shot, ui_server

WRITER = "writer-token"
ALICE = ("alice", "alice-secret")  # team-a only
OPS = ("ops", "ops-secret")  # team-a and team-b


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    def user(name: str, password: str, tenants: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "username": name,
            "password_hash": hash_password(password, iterations=1000),
            "tenants": tenants,
            "access": "read",
        }

    cfg = {
        "multitenancy_enabled": True,
        "auth": {
            "enabled": True,
            "users": [
                {"name": "writer", "token": WRITER, "tenants": ["*"], "access": "write"},
                user(*ALICE, ["team-a"]),
                user(*OPS, ["team-a", "team-b"]),
            ],
        },
    }
    server = ui_server(tmp_path_factory, "ui-auth", cfg)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traces(srv: Server) -> dict[str, str]:
    out = {}
    for tenant in ("team-a", "team-b"):
        spans = make_trace(f"service-of-{tenant}", n_children=1)
        headers = {"Authorization": f"Bearer {WRITER}", "X-Scope-OrgID": tenant}
        exporter = OTLPSpanExporter(endpoint=f"{srv.otlp_http}/v1/traces", headers=headers)
        send(exporter, spans)
        exporter.shutdown()
        out[tenant] = trace_hex(spans).lstrip("0")
    return out


@pytest.fixture(scope="module")
def browser(traces: dict[str, str]) -> Iterator[Any]:
    yield from launch()


def listed(page: Any) -> list[str]:
    rows = page.locator("[data-testid=results] tbody tr")
    rows.first.wait_for()
    return [rows.nth(i).get_attribute("data-trace-id") for i in range(rows.count())]


def test_the_ui_asks_for_credentials(srv: Server) -> None:
    for path in ("/", "/assets/nothing.js", "/api/search"):
        r = srv.get(path)
        assert r.status == 401, path
        assert 'Basic realm="threadline"' in r.headers["WWW-Authenticate"]


def test_a_wrong_password_reads_nothing(browser: Any, srv: Server) -> None:
    context, page = open_page(browser, credentials=(ALICE[0], "guess"))
    try:
        assert page.goto(srv.api + "/search").status == 401
    finally:
        context.close()


def test_a_one_tenant_user_sees_its_tenant_only(
    browser: Any, srv: Server, traces: dict[str, str]
) -> None:
    context, page = open_page(browser, credentials=ALICE)
    try:
        page.goto(srv.api + "/search")
        assert listed(page) == [traces["team-a"]]
        page.goto(srv.api + "/trace/" + traces["team-b"])
        page.locator("[data-testid=trace-error]").wait_for()  # not found for team-a
        assert page.locator("[data-testid=tenant-picker]").count() == 0
        assert all("404" in p or "trace" in p for p in page.problems)
    finally:
        context.close()


def test_a_user_of_several_tenants_picks_one(
    browser: Any, srv: Server, traces: dict[str, str]
) -> None:
    context, page = open_page(browser, credentials=OPS)
    try:
        page.goto(srv.api + "/search")
        error = page.locator("[data-testid=search-error]")
        error.wait_for()
        assert "X-Scope-OrgID must name one" in error.inner_text()
        page.locator("[data-testid=tenant]").fill("team-b")
        page.locator("[data-testid=tenant-picker] button").click()
        assert listed(page) == [traces["team-b"]]
        shot(page, srv, "tenant-picked")
        # kept for the next page: the trace of team-b opens, as team-b
        page.goto(srv.api + "/trace/" + traces["team-b"])
        page.locator("[data-testid=span-row]").first.wait_for()
        assert page.locator("[data-testid=tenant]").input_value() == "team-b"
    finally:
        context.close()
