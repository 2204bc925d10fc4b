"""A real OpenID provider for the single sign-on tests: devtools/oidc/provider.js (npm's oidc-provider).

`start_provider(...)` runs it with the machine's Node.js on a free loopback port; its users (with passwords
and groups) live in a JSON file that the provider rereads on every sign-in, so `set_groups` changes what the
next login says. Without node/npm, or when `npm ci` cannot install it, the tests that need it skip, saying
why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live import ROOT, free_port

OIDC_DIR = ROOT / "devtools" / "oidc"
SETUP_SCRIPT = ROOT / "scripts" / "oidc-provider-setup.sh"
START_TIMEOUT_SECONDS = 30


def require_provider_installed() -> None:
    """Install devtools/oidc when needed (npm ci from the lock file), or skip saying why it cannot run."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed (Debian: apt-get install -y nodejs npm): SSO tests skipped")
    result = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip(f"the test OpenID provider could not be installed: {result.stdout}{result.stderr}")


@dataclass
class OidcProvider:
    """A running provider: its issuer URL and the config file it rereads."""

    issuer: str
    config_path: Path
    process: subprocess.Popen
    log_path: Path

    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    def set_groups(self, username: str, groups: list[str]) -> None:
        """Change what the provider says about `username`'s groups from the next sign-in on."""
        config = self.config()
        config["users"][username]["groups"] = groups
        temporary = self.config_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(config))
        temporary.replace(self.config_path)  # atomic: the provider never reads half a file

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_provider(directory: Path, *, name: str, alg: str, clients: list[dict], users: dict) -> OidcProvider:
    """Start provider.js with these clients and users; return once its discovery document answers."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config_path = directory / f"{name}.json"
    config_path.write_text(
        json.dumps({"issuer": issuer, "port": port, "alg": alg, "clients": clients, "users": users})
    )
    log_path = directory / f"{name}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        ["node", str(OIDC_DIR / "provider.js"), str(config_path)],
        cwd=OIDC_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    provider = OidcProvider(issuer=issuer, config_path=config_path, process=process, log_path=log_path)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the OpenID provider exited with code {process.returncode}:\n{provider.log_tail()}")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1.0).status_code == 200:
                return provider
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    provider.stop()
    pytest.fail(
        f"the OpenID provider did not answer within {START_TIMEOUT_SECONDS} s:\n{provider.log_tail()}"
    )
