"""Brute force: failed sign-ins lock the username and the source address (429 with Retry-After), audited,
on the token endpoint, the console sign-in of tenant and public hosts, and re-authentication."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import Record
from tenancy.exceptions import SIGN_IN_LOCKED
from tenancy.models import SignInFailure, SignInLock
from tenancy.roles import Role
from tests.conftest import host_of

PASSWORD = "pw-for-tests-1"
LOCK_MINUTES = 15


@pytest.fixture(autouse=True)
def limits(settings):
    """The documented defaults, stated here so that the tests say what they rely on."""
    settings.CONTRACTOR = {
        **settings.CONTRACTOR,
        "LOCKOUT_USERNAME_FAILURES": 5,
        "LOCKOUT_ADDRESS_FAILURES": 20,
        "LOCKOUT_WINDOW_SECONDS": 900,
        "LOCKOUT_SECONDS": LOCK_MINUTES * 60,
    }


def token_attempt(tenant, username: str, password: str, address: str = "203.0.113.7"):
    return APIClient(HTTP_HOST=host_of(tenant), REMOTE_ADDR=address).post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def console_attempt(host: str, username: str, password: str, address: str = "203.0.113.8"):
    client = Client(HTTP_HOST=host, REMOTE_ADDR=address)
    return client.post("/login/", {"username": username, "password": password})


def test_five_wrong_passwords_lock_the_token_endpoint_even_for_the_right_one(
    tenant_a, make_member, in_tenant
):
    make_member(tenant_a, "brute-target", [Role.AUTHOR])
    statuses = [token_attempt(tenant_a, "brute-target", f"guess-{n}").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    locked = token_attempt(tenant_a, "brute-target", PASSWORD)
    assert locked.status_code == 429
    assert LOCK_MINUTES * 60 - 5 <= int(locked["Retry-After"]) <= LOCK_MINUTES * 60
    assert locked.json()["error"]["code"] == "too_many_attempts"
    assert locked.json()["error"]["message"] == SIGN_IN_LOCKED.format(minutes=LOCK_MINUTES)
    from_elsewhere = token_attempt(tenant_a, "brute-target", PASSWORD, address="198.51.100.1")
    assert from_elsewhere.status_code == 429  # the username is locked, wherever the attempt comes from
    in_tenant(tenant_a)
    entry = Record.objects.get(action="auth.locked_out")
    assert entry.data["username"] == "brute-target"
    assert entry.data["address"] == "203.0.113.7"
    assert entry.data["locked"] == ["username"]
    assert PASSWORD not in str(entry.data) and "guess-" not in str(entry.data)


def test_three_hundred_attempts_in_a_minute_get_nowhere(tenant_a, make_member):
    make_member(tenant_a, "hammered", [Role.AUTHOR])
    statuses = [token_attempt(tenant_a, "hammered", f"guess-{n}").status_code for n in range(30)]
    assert statuses.count(401) == 4
    assert set(statuses[4:]) == {429}
    assert SignInFailure.objects.filter(username="hammered").count() == 5  # locked attempts check nothing


def test_the_lock_ends_after_its_time(tenant_a, make_member):
    make_member(tenant_a, "patient", [Role.AUTHOR])
    for n in range(5):
        token_attempt(tenant_a, "patient", f"guess-{n}")
    assert token_attempt(tenant_a, "patient", PASSWORD).status_code == 429
    SignInLock.objects.filter(key="patient").update(locked_until=timezone.now() - timedelta(seconds=1))
    assert token_attempt(tenant_a, "patient", PASSWORD).status_code == 200
    assert token_attempt(tenant_a, "patient", "wrong again").status_code == 401  # counting starts afresh


def test_one_address_trying_many_usernames_is_locked(tenant_a, make_member):
    make_member(tenant_a, "spray-victim", [Role.AUTHOR])
    for n in range(20):
        token_attempt(tenant_a, f"sprayed-{n}", "password1", address="192.0.2.50")
    assert token_attempt(tenant_a, "spray-victim", PASSWORD, address="192.0.2.50").status_code == 429
    assert token_attempt(tenant_a, "spray-victim", PASSWORD, address="192.0.2.51").status_code == 200


def test_a_success_does_not_reset_the_addresss_count_of_other_usernames(tenant_a, make_member, settings):
    settings.CONTRACTOR = {**settings.CONTRACTOR, "LOCKOUT_ADDRESS_FAILURES": 3}
    make_member(tenant_a, "own-account", [Role.AUTHOR])
    token_attempt(tenant_a, "victim-one", "x", address="192.0.2.60")
    token_attempt(tenant_a, "victim-two", "x", address="192.0.2.60")
    assert token_attempt(tenant_a, "own-account", PASSWORD, address="192.0.2.60").status_code == 200
    assert token_attempt(tenant_a, "victim-three", "x", address="192.0.2.60").status_code == 429


def test_the_console_sign_in_locks_with_a_clear_message(tenant_a, make_member, in_tenant):
    make_member(tenant_a, "console-brute", [Role.AUTHOR])
    host = host_of(tenant_a)
    for n in range(4):
        assert console_attempt(host, "console-brute", f"guess-{n}").status_code == 200
    response = console_attempt(host, "console-brute", "guess-4")
    assert response.status_code == 429
    assert response["Retry-After"]
    assert SIGN_IN_LOCKED.format(minutes=LOCK_MINUTES) in response.content.decode()
    response = console_attempt(host, "console-brute", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in response.wsgi_request.session
    in_tenant(tenant_a)
    assert Record.objects.filter(action="auth.locked_out", data__username="console-brute").exists()


def test_the_public_hosts_sign_in_locks_too(db, django_user_model):
    django_user_model.objects.create_user("platform-brute", password=PASSWORD, is_staff=True)
    statuses = [console_attempt("localhost", "platform-brute", f"guess-{n}").status_code for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert console_attempt("localhost", "platform-brute", PASSWORD).status_code == 429


def test_a_right_password_signs_in_and_forgets_that_addresss_failures(tenant_a, make_member):
    make_member(tenant_a, "fumbler", [Role.AUTHOR])
    for n in range(4):
        token_attempt(tenant_a, "fumbler", f"typo-{n}")
    assert token_attempt(tenant_a, "fumbler", PASSWORD).status_code == 200
    assert not SignInFailure.objects.filter(username="fumbler").exists()
    assert token_attempt(tenant_a, "fumbler", "typo-again").status_code == 401
