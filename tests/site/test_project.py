"""Project-wide checks: migrations are complete, production settings are safe, layering holds."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "contractor_site.settings.production",
    "SECRET_KEY": "x7#production-test-secret-that-is-long-enough-and-random-0123456789abcdef",
    "ALLOWED_HOSTS": ".contractor.example",
}


def manage(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run manage.py with `args` in a subprocess."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_makemigrations_check_is_clean():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_the_development_secret_key():
    env = {**PRODUCTION_ENV, "SECRET_KEY": ""}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


LAYERING = {
    # app: apps it must not import
    "core": {"contractor_site", "tenancy", "audit", "policies", "bundles", "promotions", "runtime"}
    | {"governance"},
    "governance": {"bundles", "promotions", "runtime"},
    "audit": {"tenancy", "policies", "bundles", "promotions", "runtime", "governance"},
    "policies": {"tenancy", "audit", "bundles", "promotions", "runtime", "governance"},
    "bundles": {"promotions", "runtime"},
    "promotions": {"runtime"},
    "tenancy": {"runtime"},
    "contractor_site": {"runtime"},
}


def imported_apps(path: Path) -> set[str]:
    """Return the top-level packages imported by the module at `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("app", sorted(LAYERING))
def test_the_layering_of_design_section_3_holds(app):
    offences = []
    for path in (ROOT / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for name in imported_apps(path) & LAYERING[app]:
            offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offences == []
