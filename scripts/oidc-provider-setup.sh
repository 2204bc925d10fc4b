#!/usr/bin/env bash
# Install the test OpenID provider (devtools/oidc: the npm package oidc-provider, exact versions from
# package-lock.json) with `npm ci`, only when the lock file changed since the last install (sha256 stamp in
# devtools/oidc/node_modules/.package-lock.sha256). Used by scripts/setup.sh, scripts/test.sh and the SSO tests.
# Without node and npm it prints why and exits 0: the single sign-on end-to-end tests then skip, saying so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/devtools/oidc"
STAMP="$DIR/node_modules/.package-lock.sha256"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "oidc-provider: node/npm not found; the single sign-on end-to-end tests will be skipped"
  echo "  (Debian: apt-get install -y nodejs npm)"
  exit 0
fi
want="$(sha256sum "$DIR/package-lock.json" | cut -d ' ' -f 1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ] && [ -d "$DIR/node_modules/oidc-provider" ]; then
  echo "oidc-provider: devtools/oidc/node_modules up to date"
  exit 0
fi
mkdir -p "$ROOT/.run"
echo "oidc-provider: npm ci in devtools/oidc (log: .run/npm-oidc.log) ..."
if ! (cd "$DIR" && npm ci --no-audit --no-fund --ignore-scripts >"$ROOT/.run/npm-oidc.log" 2>&1); then
  echo "oidc-provider: npm ci failed (log: .run/npm-oidc.log)" >&2
  tail -n 5 "$ROOT/.run/npm-oidc.log" >&2 || true
  exit 1
fi
printf '%s\n' "$want" >"$STAMP"
echo "oidc-provider: installed"
