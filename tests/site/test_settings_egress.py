"""The egress setting of each settings module: production is strict and refuses unsafe entries unless forced,
the runtime opens only what it is told, development opens the dev model's address."""

import json
import os
import subprocess
import sys

import pytest

from core.egress import BAD_ENTRY, UNSAFE_ALLOW
from tests.site.test_project import PRODUCTION_ENV, ROOT

EGRESS_VARIABLES = ("CONTRACTOR_EGRESS_ALLOW", "CONTRACTOR_EGRESS_ALLOW_UNSAFE", "CONTRACTOR_DEV_MODEL_URL")
PRINT_EGRESS = (
    "import json; from django.conf import settings; print(json.dumps(settings.CONTRACTOR['EGRESS_ALLOW']))"
)


def egress_allow(module: str, **variables: str) -> subprocess.CompletedProcess:
    """Load settings `module` in a fresh interpreter with `variables`; print its EGRESS_ALLOW."""
    env = {name: value for name, value in os.environ.items() if name not in EGRESS_VARIABLES}
    if module == "production":
        env.update(PRODUCTION_ENV)
    env.update(variables, DJANGO_SETTINGS_MODULE=f"contractor_site.settings.{module}")
    return subprocess.run(
        [sys.executable, "-c", PRINT_EGRESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def allowed(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_allows_nothing_but_public_addresses_by_default():
    assert allowed(egress_allow("production")) == []
    assert allowed(egress_allow("production", CONTRACTOR_DEV_MODEL_URL="http://127.0.0.1:8002/v1")) == []


def test_production_takes_private_networks_it_is_given():
    entries = "10.0.0.0/8,[fd12::1]:8000"
    assert allowed(egress_allow("production", CONTRACTOR_EGRESS_ALLOW=entries)) == [
        "10.0.0.0/8",
        "[fd12::1]:8000",
    ]


@pytest.mark.parametrize("entries", ["127.0.0.1:8002", "169.254.169.254", "10.0.0.0/8,0.0.0.0/0", "::/0"])
def test_production_refuses_entries_opening_loopback_or_metadata_unless_forced(entries):
    refused = egress_allow("production", CONTRACTOR_EGRESS_ALLOW=entries)
    assert refused.returncode != 0
    unsafe = ", ".join(entry for entry in entries.split(",") if not entry.startswith("10."))
    assert UNSAFE_ALLOW.format(entries=unsafe) in refused.stderr
    forced = egress_allow("production", CONTRACTOR_EGRESS_ALLOW=entries, CONTRACTOR_EGRESS_ALLOW_UNSAFE="1")
    assert allowed(forced) == entries.split(",")


def test_an_unreadable_entry_stops_every_settings_module():
    for module in ("base", "runtime", "production"):
        result = egress_allow(module, CONTRACTOR_EGRESS_ALLOW="models.internal:443")
        assert result.returncode != 0
        assert BAD_ENTRY.format(entry="models.internal:443") in result.stderr


def test_the_runtime_opens_only_the_dev_model_it_is_given():
    assert allowed(egress_allow("runtime")) == []
    given = egress_allow("runtime", CONTRACTOR_DEV_MODEL_URL="http://127.0.0.1:9123/v1")
    assert allowed(given) == ["127.0.0.1:9123"]


def test_development_opens_the_dev_model_address():
    assert allowed(egress_allow("base")) == ["127.0.0.1:8002"]
    assert allowed(egress_allow("base", CONTRACTOR_DEV_MODEL_URL="http://localhost:9000/v1")) == [
        "127.0.0.1:9000",
        "[::1]:9000",
    ]
    assert allowed(egress_allow("base", CONTRACTOR_EGRESS_ALLOW="")) == []
