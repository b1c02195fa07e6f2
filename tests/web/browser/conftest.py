"""Fixtures of the real-browser tests: Debian's chromium driven by Playwright against flowcred
served by real uvicorn on 127.0.0.1.

* ``browser`` — one headless chromium per xdist worker (session scope). Only the system's
  ``chromium`` is launched, never a downloaded one; when it or Playwright is missing the tests
  skip locally and fail under ``CI=true`` (:func:`tests.conftest.require_service`).
* ``served`` — one flowcred per test module (its own home, broker, the 12 API keys of
  :func:`tests.api.conftest.open_api_env`), served by uvicorn in a thread. Tests of a module
  share it, so each test creates the configs it needs under unique names and never relies on
  another test having run.
* ``ui`` — per test: fresh browser contexts (``ui.new_page()``; the ``page`` fixture is the
  first), console errors and uncaught page errors collected from every page and asserted absent
  at teardown (CSP violations appear there), page load timings, screenshots.
* ``sign_in(page, role, tenant)`` — signs in through the real form (label "API key", button
  "Sign in").

Artifacts go to ``$FLOWCRED_TEST_ARTIFACTS`` or ``<repo>/artifacts``: ``screenshots/*.png`` and
``ui-page-timings.json`` (one file for the run, appended under a file lock by every worker;
records of an earlier run are dropped), plus ``ui-page-timings.txt``, the table of all records
so far. Each module prints its own table at its end on the terminal when not under xdist (xdist
workers have no terminal: read ``ui-page-timings.txt``). No test asserts on timings.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from tests.api.conftest import ApiEnv, open_api_env
from tests.conftest import require_service

try:
    import playwright.sync_api  # noqa: F401

    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False

# Without Playwright the browser modules cannot even be imported; test_browser_available.py
# then reports it (skipped locally, failed under CI=true) instead of a collection error.
collect_ignore_glob = [] if HAVE_PLAYWRIGHT else ["test_*_browser.py"]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Response, ViewportSize

REPO = Path(__file__).resolve().parents[3]
# Read once at import: the per-test isolation of tests/conftest.py removes FLOWCRED_* variables.
ARTIFACTS = Path(os.environ.get("FLOWCRED_TEST_ARTIFACTS") or REPO / "artifacts")
SCREENSHOTS = ARTIFACTS / "screenshots"
TIMINGS_JSON = ARTIFACTS / "ui-page-timings.json"
TIMINGS_TXT = ARTIFACTS / "ui-page-timings.txt"

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
NARROW: ViewportSize = {"width": 390, "height": 844}
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROLES_WITH_PAGES = ("admin", "developer", "viewer")

_NAV_TIMING_JS = """() => {
  const e = performance.getEntriesByType("navigation")[0];
  if (!e) { return null; }
  return {response: e.responseEnd - e.startTime, dcl: e.domContentLoadedEventEnd,
          load: e.loadEventEnd};
}"""


# ----------------------------------------------------------------------------- the browser
@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, once per worker."""
    path = shutil.which("chromium")
    if not HAVE_PLAYWRIGHT:
        require_service("Python playwright is not installed")
    if path is None:
        require_service("no chromium executable on PATH (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


# ----------------------------------------------------------------------------- the server
@contextmanager
def run_uvicorn(app: Any) -> Iterator[str]:
    """``app`` served by real uvicorn on 127.0.0.1 (a free port) in a thread; yields its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Served:
    """One flowcred for a module: its REST environment (broker, keys) and its base URL."""

    api: ApiEnv
    base: str

    def key(self, role: str, tenant: str = "*") -> str:
        return self.api.keys[(role, tenant)]

    def rest(self, role: str = "admin", tenant: str = "*") -> httpx.Client:
        """A REST client of the served app with that key (close it, or use ``with``)."""
        return httpx.Client(base_url=self.base, headers=self.api.headers(role, tenant), timeout=20)

    def credential(self, credential_id: int) -> dict[str, Any] | None:
        """The record as the REST API shows it to the platform admin (None when gone)."""
        with self.rest() as http:
            answer = http.get(f"/api/credentials/{credential_id}")
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def versions(self, credential_id: int) -> list[dict[str, Any]]:
        with self.rest() as http:
            answer = http.get(f"/api/credentials/{credential_id}/versions")
        assert answer.status_code == 200, answer.text
        body: list[dict[str, Any]] = answer.json()
        return body

    def credential_names(self) -> set[str]:
        with self.rest() as http:
            answer = http.get("/api/credentials", params={"limit": 200})
        assert answer.status_code == 200, answer.text
        return {item["name"] for item in answer.json()["items"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with open_api_env(tmp_path_factory.mktemp("ui-browser")) as api, run_uvicorn(api.app) as base:
        yield Served(api=api, base=base)


# ----------------------------------------------------------------------------- timings
def _run_id(config: pytest.Config) -> str:
    """The same id in every xdist worker of one run (xdist's), else one per process."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput and workerinput.get("testrunuid"):
        return str(workerinput["testrunuid"])
    if not hasattr(config, "_flowcred_ui_run"):
        config._flowcred_ui_run = uuid.uuid4().hex  # type: ignore[attr-defined]
    return str(config._flowcred_ui_run)  # type: ignore[attr-defined]


def format_table(records: list[dict[str, Any]]) -> str:
    head = f"{'page':<14} {'module':<24} {'response ms':>11} {'DOMContentLoaded':>16} {'load':>8}"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(
            f"{r['page']:<14} {r['module']:<24} {r['responseMs']:>11.1f} "
            f"{r['domContentLoadedMs']:>16.1f} {r['loadMs']:>8.1f}"
        )
    return "\n".join(lines)


@contextmanager
def _locked() -> Iterator[None]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / ".ui-page-timings.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_timing(run: str, record: dict[str, Any]) -> None:
    """Append ``record`` to the run's JSON file (workers append in turn, under a lock)."""
    with _locked():
        data: dict[str, Any] = {"run": run, "timings": []}
        if TIMINGS_JSON.exists():
            try:
                old = json.loads(TIMINGS_JSON.read_text())
            except ValueError:
                old = {}
            if isinstance(old, dict) and old.get("run") == run:
                data = old
        data["timings"].append(record)
        tmp = TIMINGS_JSON.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(TIMINGS_JSON)
        TIMINGS_TXT.write_text(format_table(data["timings"]) + "\n")


@pytest.fixture(scope="module")
def timings(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    """This module's timing records; their table is printed when the module ends."""
    records: list[dict[str, Any]] = []
    yield records
    if not records:
        return
    table = format_table(records)
    module = request.module.__name__.rsplit(".", 1)[-1]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not hasattr(request.config, "workerinput"):
        reporter.write_line("")
        reporter.write_line(f"page load timings of {module} (ms; no assertion):")
        for line in table.splitlines():
            reporter.write_line(line)


# ----------------------------------------------------------------------------- per test
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call phase's report on the item, for the ``ui`` fixture's teardown."""
    report = yield
    if report.when == "call":
        item._flowcred_call_report = report  # type: ignore[attr-defined]
    return report


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of every page of a test."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(message: Any) -> None:
            if message.type == "error":
                where = (message.location or {}).get("url") or page.url
                self.errors.append(f"console: {message.text} @ {where}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc} @ {page.url}"))

    def allow(self, pattern: str) -> None:
        """A console error the test provokes on purpose (e.g. the 403 of a forged request)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@dataclass
class Ui:
    """One test's view of the browser: pages in fresh contexts, sign-in, timings, shots."""

    served: Served
    browser: Browser
    module: str
    run: str
    records: list[dict[str, Any]]
    console: ConsoleLog = field(default_factory=ConsoleLog)
    contexts: list[BrowserContext] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.served.base

    def new_context(self, viewport: ViewportSize | None = None) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.base, viewport=viewport or VIEWPORT, service_workers="block"
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context

    def new_page(
        self, viewport: ViewportSize | None = None, context: BrowserContext | None = None
    ) -> Page:
        page = (context or self.new_context(viewport)).new_page()
        self.console.attach(page)
        return page

    def sign_in(self, page: Page, role: str = "admin", tenant: str = "*") -> None:
        """Sign in through the form; ends on the Auth Configs list."""
        page.goto("/ui/login")
        page.get_by_label("API key", exact=True).fill(self.served.key(role, tenant))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/ui/credentials(\?|$)"))
        page.get_by_role("button", name="Sign out").wait_for()

    def visit(self, page: Page, path: str, label: str | None = None) -> Response:
        """``page.goto(path)``; with ``label`` its load timing is recorded under that name."""
        response = page.goto(path)
        assert response is not None, f"no response for {path}"
        if label:
            self.record_timing(page, label)
        return response

    def record_timing(self, page: Page, label: str) -> None:
        page.wait_for_load_state("load")
        entry = None
        for _ in range(50):  # loadEventEnd is 0 until the load handlers returned
            entry = page.evaluate(_NAV_TIMING_JS)
            if entry and entry["load"] > 0:
                break
            page.wait_for_timeout(20)
        assert entry, f"no navigation timing entry on {page.url}"
        record = {
            "page": label,
            "module": self.module,
            "path": page.url.removeprefix(self.base),
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "responseMs": round(entry["response"], 1),
            "domContentLoadedMs": round(entry["dcl"], 1),
            "loadMs": round(entry["load"], 1),
        }
        self.records.append(record)
        append_timing(self.run, record)

    def screenshot(self, page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(target), full_page=True)
        return target

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def ui(
    served: Served, browser: Browser, timings: list[dict[str, Any]], request: pytest.FixtureRequest
) -> Iterator[Ui]:
    helper = Ui(
        served=served,
        browser=browser,
        module=request.module.__name__.rsplit(".", 1)[-1],
        run=_run_id(request.config),
        records=timings,
    )
    try:
        yield helper
        call = getattr(request.node, "_flowcred_call_report", None)
        errors = helper.console.unexpected()
        # A test that already failed reports its own failure; its console errors would be noise.
        if call is None or call.passed:
            assert not errors, "console errors on the pages of this test:\n" + "\n".join(errors)
    finally:
        helper.close()


@pytest.fixture
def page(ui: Ui) -> Page:
    """A page in a fresh browser context (1280x800), not signed in."""
    return ui.new_page()


@pytest.fixture
def sign_in(ui: Ui) -> Callable[..., None]:
    """``sign_in(page, role="admin", tenant="*")`` through the real sign-in form."""
    return ui.sign_in


# ----------------------------------------------------------------------------- assertions
def assert_ui_headers(response: Response) -> None:
    """What every /ui page's response must carry (see flowcred.web.security)."""
    headers = response.all_headers()
    where = response.url
    assert headers.get("cache-control") == "no-store", (where, headers.get("cache-control"))
    csp = headers.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("script-src") == "script-src 'self'", (where, csp)
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, (where, csp)
