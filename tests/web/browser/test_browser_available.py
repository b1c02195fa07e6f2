"""The browser tests need Python Playwright and Debian's chromium: say so when either is
missing (a skip on a laptop, a failure under CI=true), rather than vanish from the run."""

from __future__ import annotations

import shutil

from tests.conftest import require_service
from tests.web.browser.conftest import HAVE_PLAYWRIGHT


def test_playwright_and_chromium_are_installed() -> None:
    if not HAVE_PLAYWRIGHT:
        require_service("Python playwright is not installed: the browser tests did not run")
    if shutil.which("chromium") is None:
        require_service("no chromium on PATH (Debian package chromium): browser tests skipped")
