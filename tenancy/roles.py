"""Roles a member may hold and the one map from role to capability."""

from django.db import models


class Role(models.TextChoices):
    AUTHOR = "author", "Author"
    REVIEWER = "reviewer", "Reviewer"
    OPERATOR = "operator", "Operator"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Admin"


class Capability(models.TextChoices):
    VIEW = "view", "Read the tenant's bundles, promotions, deployments and decisions"
    CREATE_BUNDLE = "create_bundle", "Create a bundle by pushing its first version"
    PUSH_VERSION = "push_version", "Push versions (also needs the push_version grant on the bundle)"
    RUN_GATES = "run_gates", "Start gate runs"
    REQUEST_PROMOTION = "request_promotion", "Request a promotion"
    APPROVE_PROMOTION = (
        "approve_promotion",
        "Approve or reject (also needs approve_promotion on the environment)",
    )
    ROLLBACK = "rollback", "Roll an environment back"
    MANAGE_RUNTIME_KEYS = "manage_runtime_keys", "Create and revoke runtime keys"
    MANAGE_MODEL_ENDPOINTS = "manage_model_endpoints", "Manage model endpoints"
    VIEW_AUDIT = "view_audit", "Browse, verify and export the audit log"
    MANAGE_MEMBERSHIPS = "manage_memberships", "Add members and change roles"
    MANAGE_ENVIRONMENTS = "manage_environments", "Change environment rules and approval grants"
    MANAGE_WEBHOOKS = "manage_webhooks", "Configure notification webhooks"
    APPROVE_GOVERNANCE = (
        "approve_governance",
        "Approve or reject another admin's governance change (tokens: scopes admin and approve)",
    )


ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.AUTHOR: frozenset(
        {Capability.VIEW, Capability.CREATE_BUNDLE, Capability.PUSH_VERSION, Capability.RUN_GATES}
        | {Capability.REQUEST_PROMOTION}
    ),
    Role.REVIEWER: frozenset({Capability.VIEW, Capability.APPROVE_PROMOTION}),
    Role.OPERATOR: frozenset(
        {Capability.VIEW, Capability.RUN_GATES, Capability.REQUEST_PROMOTION, Capability.ROLLBACK}
        | {Capability.MANAGE_RUNTIME_KEYS, Capability.MANAGE_MODEL_ENDPOINTS}
    ),
    Role.AUDITOR: frozenset({Capability.VIEW, Capability.VIEW_AUDIT}),
    Role.ADMIN: frozenset(
        {
            Capability.VIEW,
            Capability.VIEW_AUDIT,
            Capability.MANAGE_MEMBERSHIPS,
            Capability.MANAGE_ENVIRONMENTS,
        }
        | {Capability.MANAGE_WEBHOOKS, Capability.APPROVE_GOVERNANCE}
    ),
}


def capabilities_of(roles) -> frozenset[str]:
    """Return the union of the capabilities of `roles`."""
    return frozenset().union(*(ROLE_CAPABILITIES.get(role, frozenset()) for role in roles))


class Scope(models.TextChoices):
    """What a personal API token may be used for, checked in addition to the member's roles."""

    READ = "read", "Read bundles, promotions, deployments and decisions"
    PUSH = "push", "Push versions and run gates"
    PROMOTE = "promote", "Request promotions and run gates"
    APPROVE = "approve", "Approve or reject promotion requests"
    OPERATE = "operate", "Roll back, manage runtime keys and model endpoints"
    AUDIT = "audit", "Browse, verify and export the audit log"
    ADMIN = "admin", "Memberships, environment rules, grants, webhooks (governance changes)"


# Every scope implies read: a token that may push may also read what it pushed.
SCOPE_CAPABILITIES: dict[str, frozenset[str]] = {
    Scope.READ: frozenset({Capability.VIEW}),
    Scope.PUSH: frozenset({Capability.VIEW, Capability.CREATE_BUNDLE, Capability.PUSH_VERSION})
    | frozenset({Capability.RUN_GATES}),
    Scope.PROMOTE: frozenset({Capability.VIEW, Capability.REQUEST_PROMOTION, Capability.RUN_GATES}),
    Scope.APPROVE: frozenset({Capability.VIEW, Capability.APPROVE_PROMOTION}),
    Scope.OPERATE: frozenset({Capability.VIEW, Capability.ROLLBACK, Capability.MANAGE_RUNTIME_KEYS})
    | frozenset({Capability.MANAGE_MODEL_ENDPOINTS}),
    Scope.AUDIT: frozenset({Capability.VIEW, Capability.VIEW_AUDIT}),
    Scope.ADMIN: frozenset({Capability.VIEW, Capability.MANAGE_MEMBERSHIPS, Capability.MANAGE_ENVIRONMENTS})
    | frozenset({Capability.MANAGE_WEBHOOKS}),
}
# Scopes that only read: a token holding nothing else changes nothing, whatever a view declares.
READ_ONLY_SCOPES = frozenset({Scope.READ, Scope.AUDIT})


# Capabilities no single scope covers: a token needs every scope listed (deciding a governance change is both
# an admin act and an approval).
COMBINED_SCOPE_CAPABILITIES: dict[str, frozenset[str]] = {
    Capability.APPROVE_GOVERNANCE: frozenset({Scope.ADMIN, Scope.APPROVE}),
}


def scope_capabilities(scopes) -> frozenset[str]:
    """Return the union of the capabilities `scopes` cover (with those needing several scopes together)."""
    covered = frozenset().union(*(SCOPE_CAPABILITIES.get(scope, frozenset()) for scope in scopes))
    combined = {
        capability for capability, needed in COMBINED_SCOPE_CAPABILITIES.items() if needed <= set(scopes)
    }
    return covered | combined


def scopes_for_roles(roles) -> list[str]:
    """Return the scopes covering some capability of `roles` (the default scopes of a member's new token)."""
    granted = capabilities_of(roles)
    beyond_reading = {
        scope: capabilities if scope == Scope.READ else capabilities - {Capability.VIEW}
        for scope, capabilities in SCOPE_CAPABILITIES.items()
    }
    combined = {
        scope
        for capability, needed in COMBINED_SCOPE_CAPABILITIES.items()
        if capability in granted
        for scope in needed
    }
    return [scope for scope in Scope.values if beyond_reading[scope] & granted or scope in combined]
