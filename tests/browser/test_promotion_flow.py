"""The promotion flow as its users click through it, in headless Chromium against the real server and worker.

An author uploads claims-triage and requests staging (gates run on the worker; staging needs no approval),
then requests current; a reviewer approves it; the environment page shows it live. A second version goes the
same way, and an operator rolls current back to the first. Screenshots of each step: test-artifacts/browser/.
"""

import re
import shutil
import time

import pytest
from django.contrib.auth import get_user_model

from cli.bundle_files import bundle_archive
from promotions.models import PromotionStatus
from promotions.selectors import access_environment
from promotions.services.environments import environment_approval_grant, environments_ensure_defaults
from tenancy.services import membership_set
from tests.conftest import run_committed
from tests.live import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.worker]

PASSWORD = "pw-for-e2e-web-1"
MEMBERS = {"author": ["author"], "reviewer": ["reviewer"], "operator": ["operator"]}
FINAL_STATUSES = {status.value for status in PromotionStatus} - {PromotionStatus.PENDING.value}
STATUS_TIMEOUT_SECONDS = 30


def test_the_scenario_starts_from_a_migrated_test_database(db):
    # Also makes pytest-django set up the test database when this module runs alone (it sets up only the
    # databases that collected tests ask for, and the browser scenario works through committed threads).
    from tenancy.models import Tenant

    assert Tenant.objects.filter(schema_name="public").exists()


def create_members(tenant) -> tuple[str, dict[str, str]]:
    """Create the browser users (committed); the reviewer may approve promotions to current.

    Return the tenant's host and the usernames by role.
    """
    environments_ensure_defaults()
    names = {}
    for role, roles in MEMBERS.items():
        user, _ = get_user_model().objects.get_or_create(username=f"e2e-web-{role}")
        user.set_password(PASSWORD)
        user.save()
        membership_set(actor=None, tenant=tenant, user=user, roles=roles)
        names[role] = user.username
    reviewer = get_user_model().objects.get(username=names["reviewer"])
    environment_approval_grant(
        actor=None, environment=access_environment(None, "current"), user=reviewer, granted=True
    )
    return tenant.domains.get(is_primary=True).domain, names


@pytest.fixture
def site(control_plane_server, celery_worker_process, committed_tenant, django_db_blocker):
    """Return (url_of(path), usernames by role) for the committed tenant served by the live server."""
    with django_db_blocker.unblock():
        host, names = run_committed(create_members, committed_tenant, tenant=committed_tenant)
    base = f"http://{host}:{control_plane_server.port}"
    return (lambda path: base + path), names


@pytest.fixture
def archives(tmp_path):
    """Return .tar.gz files of claims-triage 1.2.0 (the example) and 1.3.0 (another description)."""
    paths = {}
    for version in ("1.2.0", "1.3.0"):
        directory = tmp_path / version / "claims-triage"
        shutil.copytree(ROOT / "examples" / "claims-triage", directory)
        manifest = directory / "bundle.yaml"
        text = re.sub(r"(?m)^version: .*$", f"version: {version}", manifest.read_text())
        if version != "1.2.0":
            text = re.sub(r"(?m)^description: .*$", "description: Route claims, tuned thresholds", text)
        manifest.write_text(text)
        paths[version] = tmp_path / f"claims-triage-{version}.tar.gz"
        paths[version].write_bytes(bundle_archive(directory))
    return paths


def sign_in(page, url_of, username: str) -> None:
    page.goto(url_of("/login/"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector('[data-testid="dashboard-roles"]')


def status_of(page) -> str:
    return page.locator('[data-testid="promotion-status"]').inner_text().strip()


def wait_for_status(page, expected: str) -> None:
    """Reload the request page until its status is `expected`, as a user would; fail on another end."""
    deadline = time.monotonic() + STATUS_TIMEOUT_SECONDS
    while (status := status_of(page)) != expected:
        if status in FINAL_STATUSES:
            reason = page.locator('[data-testid="status-reason"]').all_inner_texts()
            pytest.fail(f"the request ended {status}, not {expected}: {reason}")
        if time.monotonic() > deadline:
            pytest.fail(f"the request is still {status} after {STATUS_TIMEOUT_SECONDS} s")
        time.sleep(0.5)
        page.reload()


def upload(page, url_of, archive, version: str) -> None:
    page.goto(url_of("/bundles/_upload/"))
    page.set_input_files("input[name=archive]", str(archive))
    page.click('[data-testid="upload-form"] button[type=submit]')
    page.wait_for_url(re.compile(rf"/bundles/claims-triage/versions/{re.escape(version)}/$"))


def request_promotion(page, environment: str, justification: str) -> int:
    """On a version page, request its promotion to `environment`; return the request's id."""
    form = page.locator('[data-testid="request-promotion"]')
    form.locator("select[name=environment]").select_option(environment)
    form.locator("textarea[name=justification]").fill(justification)
    form.locator('[data-testid="request-promotion-submit"]').click()
    page.wait_for_url(re.compile(r"/promotions/\d+/$"))
    return int(re.search(r"/promotions/(\d+)/$", page.url).group(1))


def approve(page, url_of, request_id: int, comment: str, shot) -> None:
    """As a reviewer, find the request among those awaiting a decision and approve it."""
    page.goto(url_of("/promotions/"))
    shot(page, f"awaiting-review-{request_id}")
    page.click(f'[data-testid="awaiting-you"] a[href="/promotions/{request_id}/"]')
    page.fill("textarea[name=comment]", comment)
    page.click('[data-testid="approve"]')
    page.wait_for_url(re.compile(rf"/promotions/{request_id}/$"))


def live_in(page, url_of, environment: str) -> str:
    page.goto(url_of(f"/environments/{environment}/"))
    return (
        page.locator('[data-testid="live-claims-triage"] [data-testid="live-version"] a').inner_text().strip()
    )


def release(author, reviewer, url_of, archive, version: str, shot) -> int:
    """Upload `version`, promote it to staging (gates on the worker), then to current with an approval."""
    upload(author, url_of, archive, version)
    shot(author, f"uploaded-{version}")
    request_promotion(author, "staging", f"Ship {version} to staging")
    wait_for_status(author, "promoted")
    shot(author, f"staging-promoted-{version}")
    author.click('[data-testid="version-link"]')
    current = request_promotion(author, "current", f"Ship {version} to production")
    assert status_of(author) == "pending"
    assert "You requested this promotion" in author.locator('[data-testid="cannot-decide"]').inner_text()
    shot(author, f"current-requested-{version}")

    approve(reviewer, url_of, current, f"Reviewed {version}", shot)
    wait_for_status(reviewer, "promoted")
    assert f"Reviewed {version}" in reviewer.locator('[data-testid="approvals"]').inner_text()
    shot(reviewer, f"current-approved-{version}")
    return current


def test_an_author_ships_two_versions_a_reviewer_approves_and_an_operator_rolls_back(
    site, archives, new_page, screenshot
):
    url_of, names = site
    author, reviewer, operator = new_page(), new_page(), new_page()
    sign_in(author, url_of, names["author"])
    sign_in(reviewer, url_of, names["reviewer"])
    screenshot(author, "signed-in")

    release(author, reviewer, url_of, archives["1.2.0"], "1.2.0", screenshot)
    assert live_in(reviewer, url_of, "current") == "1.2.0"
    screenshot(reviewer, "current-live-1.2.0")

    release(author, reviewer, url_of, archives["1.3.0"], "1.3.0", screenshot)
    assert live_in(reviewer, url_of, "current") == "1.3.0"
    assert reviewer.locator('[data-testid="rollback"]').count() == 0  # reviewers cannot roll back
    screenshot(reviewer, "current-live-1.3.0")

    sign_in(operator, url_of, names["operator"])
    assert live_in(operator, url_of, "current") == "1.3.0"
    form = operator.locator('[data-testid="rollback-claims-triage"]')
    form.locator("select[name=to_version]").select_option("1.2.0")
    form.locator("textarea[name=justification]").fill("1.3.0 routes too many claims to review")
    screenshot(operator, "rollback-form")
    form.locator('[data-testid="rollback"]').click()
    operator.wait_for_selector(".messages li")
    assert "Rolled claims-triage back in current: claims-triage@1.2.0 is live." in operator.inner_text(
        ".messages"
    )
    assert (
        operator.locator('[data-testid="live-claims-triage"] [data-testid="live-version"] a').inner_text()
        == "1.2.0"
    )
    timeline = operator.locator('[data-testid="timeline"]').inner_text()
    assert "rollback" in timeline
    assert "1.3.0 routes too many claims to review" in timeline
    screenshot(operator, "rolled-back")
    operator.goto(url_of("/environments/"))
    assert "claims-triage 1.2.0" in " ".join(
        operator.locator('[data-testid="environments"] tr').all_inner_texts()
    )
    screenshot(operator, "environments")
