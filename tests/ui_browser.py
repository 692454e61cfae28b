"""The web UI tests' browser: Debian's Chromium (installed with apt-get when missing and this
runs as root) driven by Playwright, one per test module, and pages that record every console
error, page error, failed request and 5xx answer in ``page.problems``. Screenshots go next to
the server's log (kept as test artifacts)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from conftest import Server

CHROMIUM = Path("/usr/bin/chromium")


def chromium() -> Path:
    if not CHROMIUM.exists() and shutil.which("apt-get") and Path("/root").is_dir():
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False)
    if not CHROMIUM.exists():
        pytest.skip("no Chromium at /usr/bin/chromium and it could not be installed")
    return CHROMIUM


def ui_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, config: dict[str, Any] | None = None
) -> Server:
    """A started server whose web UI is built (a missing build fails: `make test` builds it)."""
    server = Server(tmp_path_factory.mktemp(name) / "data", config).start()
    if server.get("/").status == 503:
        server.stop()
        pytest.fail("the web UI is not built: make test builds it (ui/)")
    return server


def launch() -> Iterator[Any]:
    """A Chromium for a module's tests; start it after pushing data (Playwright's sync API
    runs an event loop of its own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium()), args=["--no-sandbox"])
        yield b
        b.close()


def open_page(
    browser: Any,
    width: int = 1400,
    height: int = 900,
    dark: bool = False,
    credentials: tuple[str, str] | None = None,
) -> tuple[Any, Any]:
    """A fresh context and page (answering basic-auth challenges with ``credentials``);
    ``page.problems`` lists what went wrong while it was open."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme="dark" if dark else "light",
        http_credentials=(
            {"username": credentials[0], "password": credentials[1]} if credentials else None
        ),
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # the UI loads nothing from outside the server (fonts, scripts, images: all its own)
    page.on(
        "request",
        lambda r: (
            None
            if urlparse(r.url).hostname in (None, "", "127.0.0.1")
            or r.url.startswith(("data:", "blob:"))
            else problems.append(f"outside request {r.url}")
        ),
    )
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    # (a request the page's own navigation cancels is aborted, not failed)
    page.on(
        "requestfailed",
        lambda r: None if r.failure == "net::ERR_ABORTED" else problems.append(f"failed {r.url}"),
    )
    page.problems = problems
    return context, page


def shot(page: Any, srv: Server, name: str) -> None:
    page.screenshot(path=str(srv.log_path.parent / f"ui-{name}.png"), full_page=True)
