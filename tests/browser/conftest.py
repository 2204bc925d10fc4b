"""Browser tests: headless Debian Chromium driven by Playwright against a real control-plane process.

Chromium comes from the system (a Playwright browser download fails on these machines). When it is missing,
the set-up runs `ensure_chromium` from scripts/services.sh (installs Debian's package as root); when it is
still missing, or Playwright is not installed, or CONTRACTOR_BROWSER_TESTS=0, every browser test is skipped
with the reason.
"""

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.live import ROOT, control_plane_server  # noqa: F401 (fixture for the browser tests)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Chromium resolves *.localhost to loopback itself; this keeps it so whatever the resolver says.
    "--host-resolver-rules=MAP *.localhost 127.0.0.1",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# The client secret of the single sign-on tests' confidential client: the live server process reads it from
# its environment (copied from this one when it starts), so it is set here, at collection, before any server.
SSO_CLIENT_SECRET_ENV = "E2E_SSO_CLIENT_SECRET"
os.environ.setdefault(SSO_CLIENT_SECRET_ENV, secrets.token_urlsafe(24))
DEFAULT_TIMEOUT_MS = 15_000


def find_chromium() -> str | None:
    """Return the path of the system's Chromium, or None."""
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def ensure_chromium() -> None:
    """Run scripts/services.sh's ensure_chromium (installs Debian's chromium as root; prints why not)."""
    script = f'source "{ROOT / "scripts" / "services.sh"}" && ensure_chromium'
    subprocess.run(["bash", "-c", script], cwd=ROOT, timeout=900, check=False)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Return the Chromium executable, or skip the browser tests saying why there is none."""
    if os.environ.get("CONTRACTOR_BROWSER_TESTS", "1") == "0":
        pytest.skip("browser tests disabled (CONTRACTOR_BROWSER_TESTS=0)")
    path = find_chromium()
    if path is None:
        ensure_chromium()
        path = find_chromium()
    if path is None:
        pytest.skip("chromium is not installed (as root: apt-get install -y chromium); browser tests skipped")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path, django_db_setup):
    """Launch headless Chromium for a module's tests (after the test database is set up: see below).

    Playwright's sync API runs an asyncio loop in this thread while it is open, and Django refuses ORM calls
    from a thread with a running loop: tests do their database work through `run_committed` (its own thread),
    and the browser is closed at the end of the module so later tests are unaffected.
    """
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_FLAGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser):
    """Return a function opening a page in a fresh context (its own cookies: one signed-in user each)."""
    contexts = []

    def open_page():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request):
    """Return a function saving a numbered full-page screenshot in test-artifacts/browser/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 1000))

    def save(page, name: str) -> Path:
        prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        path = ARTIFACTS / f"{prefix}-{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
