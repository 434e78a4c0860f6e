"""Fixtures for the real-browser tests: a live otklik server per test and headless system Chromium.

Each test gets its own server (uvicorn in a background thread) with a fresh data dir and SQLite database,
so tests never see each other's conversations. The servers understand text with the pack's keyword
matcher (`nlu = "keywords"`): these tests are about the web chat, the offline classifier has its own tests
in tests/conversations/nlu, and training it would cost more than the whole folder.

Chromium: `/usr/bin/chromium`. When it is missing the tests are skipped, unless `OTKLIK_REQUIRE_BROWSER=1`
(CI), in which case they fail. Screenshots for the docs are written only when `OTKLIK_SCREENSHOTS=1`.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, deadline: float, alive: threading.Thread | None = None) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if alive is not None and not alive.is_alive():
            raise RuntimeError(f"the server thread died before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {START_TIMEOUT:.0f}s: {last}")


# --- the live server ---------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    data_dir: Path

    @property
    def db_path(self) -> Path:
        return self.data_dir / "otklik.db"


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The real FastAPI app (web chat, dispatcher, scheduler) on a free loopback port."""
    import uvicorn

    from otklik.bootstrap import Otklik
    from otklik.config import Settings
    from otklik.web.app import create_app

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = _free_port()
    settings = Settings(
        env="test",
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'otklik.db'}",
        host="127.0.0.1",
        port=port,
        log_level="WARNING",
        nlu="keywords",
        demo=True,
        default_pack="care-ru",  # the scenarios below are the care-ru pack's
    )
    failures: list[BaseException] = []

    def seed() -> None:  # in a thread: Playwright's sync API owns this thread's event loop
        try:
            asyncio.run(_seed_admin_users(settings))
        except BaseException as exc:
            failures.append(exc)

    seeding = threading.Thread(target=seed)
    seeding.start()
    seeding.join()
    if failures:
        raise failures[0]
    app = create_app(Otklik.build(settings))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=0.25,  # open long-polls must not hold the teardown
        )
    )
    thread = threading.Thread(target=server.run, name=f"otklik-live-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/healthz", time.monotonic() + START_TIMEOUT, thread)
        yield LiveServer(url, data_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


ADMIN_PASSWORD = "browser test password"


async def _seed_admin_users(settings: object) -> None:
    """One admin user per role (login == role name), created before the server starts."""
    from otklik.bootstrap import Otklik
    from otklik.platform.users import Role, create_user

    otk = Otklik.build(settings)  # type: ignore[arg-type]
    try:
        await otk.start()  # users exist before the server starts, so it creates no demo owner
        for role in Role:
            await create_user(otk.db, role.value, role, password=ADMIN_PASSWORD, name=role.value.title(), language="en")
    finally:
        await otk.close()


def sign_in(context: BrowserContext, server: LiveServer, role: str) -> Page:
    """A page of `context` signed in to the admin as the user of `role`."""
    page = context.new_page()
    page.goto(f"{server.url}/admin/login")
    page.fill("input[name=login]", role)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{server.url}/admin")
    return page


@pytest.fixture
def admin_context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A desktop browser profile for the admin (English UI unless a test switches)."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def host_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A throwaway static web server on loopback, standing in for a seller's own site.

    Yields (base URL, folder); files written into the folder are served.
    """
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="host-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"headless Chromium not found at {CHROMIUM}; install the distribution's chromium package"
    if os.environ.get("OTKLIK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"OTKLIK_REQUIRE_BROWSER=1 but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="package")  # its event loop must be gone before other packages run
def browser(chromium_executable: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """Things a page did that a test may want to assert on."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A fresh browser profile (own sessionStorage) with a Russian-speaking buyer on a phone-sized screen.

    It depends on `live_server` so that it is closed (ending the page's long-poll) before the server stops.
    """
    context = browser.new_context(locale="ru-RU", viewport={"width": 420, "height": 760}, device_scale_factor=1)
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext, watched: Watched) -> Iterator[Page]:
    page = context.new_page()
    page.on("dialog", lambda dialog: (watched.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    yield page
    assert watched.errors == [], f"uncaught JavaScript errors: {watched.errors}"


# --- screenshots for the docs ------------------------------------------------------------------


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    """`screenshot(page, "webchat-greeting")` writes docs/images/<name>.png when OTKLIK_SCREENSHOTS=1."""

    def take(page: Page, name: str) -> None:
        if os.environ.get("OTKLIK_SCREENSHOTS") != "1":
            return
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMAGES / f"{name}.png"))

    return take
