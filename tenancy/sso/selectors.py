"""Reads of single sign-on configurations."""

from __future__ import annotations

import os

from tenancy.models import SsoConfig, Tenant
from tenancy.sso.exceptions import SsoNotConfigured, SsoSecretUnavailable
from tenancy.sso.services import secret_variable_allowed


def sso_config_of(tenant: Tenant | None) -> SsoConfig | None:
    """Return `tenant`'s SSO configuration, or None (none on the public host)."""
    if tenant is None:
        return None
    return SsoConfig.objects.filter(tenant=tenant).first()


def enabled_sso_config(tenant: Tenant | None) -> SsoConfig:
    """Return `tenant`'s enabled SSO configuration; raise SsoNotConfigured."""
    config = sso_config_of(tenant)
    if config is None or not config.enabled:
        raise SsoNotConfigured()
    return config


def sso_only_for(tenant: Tenant | None) -> bool:
    """Return whether members of `tenant` must sign in through single sign-on."""
    config = sso_config_of(tenant)
    return bool(config and config.enabled and config.sso_only)


def client_secret_of(config: SsoConfig) -> str | None:
    """Return the client secret from the named variable (None for a public client); raise when unusable.

    The name is checked again here, whatever the stored row says: a row written straight into the database
    must not make the console send, say, SECRET_KEY to an operator-chosen token endpoint.
    """
    if not config.client_secret_env:
        return None
    if not secret_variable_allowed(config.client_secret_env, config.tenant):
        raise SsoSecretUnavailable()
    secret = os.environ.get(config.client_secret_env)
    if not secret:
        raise SsoSecretUnavailable()
    return secret
