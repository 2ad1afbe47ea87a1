"""Browser tests: Playwright for Python driving Debian's Chromium (never a downloaded
browser) against the real app served on loopback.

Without /usr/bin/chromium (scripts/test.sh installs it with apt-get when it runs as root)
or the `playwright` package, every test here is skipped with a loud reason.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import warnings
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests import factories
from tests.servers import LiveServer, serve_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return (f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing; install Debian's chromium "
                "(apt-get install chromium) or run scripts/test.sh as root")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "BROWSER TESTS SKIPPED: the 'playwright' package is not installed (.[test])"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _unavailable()
    if reason is None:
        return
    browser_items = [i for i in items if "tests/browser/" in str(i.fspath).replace("\\", "/")]
    if browser_items:
        warnings.warn(reason, stacklevel=1)
        print(f"\n{'!' * 78}\n{reason}\n{'!' * 78}", file=sys.stderr)
        for item in browser_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site_factory(tmp_path, migrated_template):
    """`site_factory(confidence_threshold=...)` -> the app served on loopback (a LiveServer:
    `site("/login")` is a URL)."""
    numbers = itertools.count()
    with ExitStack() as servers:

        def start(**overrides) -> LiveServer:
            number = next(numbers)
            database = tmp_path / f"browser-{number}.db"
            shutil.copy(migrated_template, database)
            settings = factories.settings_for(tmp_path / f"instance-{number}",
                                              f"sqlite:///{database}", **overrides)
            return servers.enter_context(serve_app(settings))

        yield start


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot for people to look at (CI keeps test-artifacts/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, site: LiveServer, user: factories.UserLogin) -> None:
    """Sign in through the login form; an admin also types the e-mailed one-time code."""
    page.goto(site("/login"))
    page.fill("#email", user.email)
    page.fill("#password", user.password)
    page.click("button[value=sign-in]")
    if user.role == "admin":
        page.wait_for_selector("#otp")
        page.fill("#password", user.password)
        page.fill("#otp", factories.latest_code(site.app, user.email))
        page.click("button[value=sign-in]")
    page.wait_for_load_state()
