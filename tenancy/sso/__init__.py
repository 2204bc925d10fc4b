"""Single sign-on: a tenant's members sign in through the tenant's own OpenID Connect provider.

Authorization code flow with PKCE (S256), state and nonce, ID tokens verified against the provider's JWKS.
Roles and groups are recomputed from the claims at every sign-in. One configuration per tenant (SsoConfig),
written only by `services.sso_config_apply` (platform operators: admin and `manage.py sso_config`).

Why not mozilla-django-oidc: it reads one provider from settings and calls it with `requests`, so per-tenant
issuers would need most of it overridden, and its calls would bypass the egress policy (core/egress.py) that
keeps an operator-chosen URL off the private network. This client is small: httpx through the egress policy,
PyJWT (with cryptography) for the signature and the registered claims.
"""
