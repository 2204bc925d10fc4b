"""Change kinds contributed by the apps that own each control, so governance depends on none of them.

An app registers its kinds in AppConfig.ready(), like dashboard panels (core/dashboard.py). A kind says how
to read the current state of a target (compared with the request's before-state when it would apply) and how
to apply an approved change; both run inside the approving transaction.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChangeKind:
    """One kind of governance change.

    `state(target)` returns the current state of the target in the form the request's `before` was stored;
    `apply(target, proposed, actor, approved_by)` makes the change (audited by its app) with `actor` the
    admin whose approval completed it and `approved_by` every approver's username.
    """

    name: str
    label: str
    state: Callable[[dict], Any]
    apply: Callable[..., None]


_kinds: dict[str, ChangeKind] = {}


def register_kind(kind: ChangeKind) -> None:
    """Make `kind` known to governance (registering the same name again replaces it)."""
    _kinds[kind.name] = kind


def register_kinds(*kinds: tuple[str, str, Callable, Callable]) -> None:
    """Register each (name, label, state, apply) as a ChangeKind."""
    for name, label, state, apply in kinds:
        register_kind(ChangeKind(name=name, label=label, state=state, apply=apply))


def change_kind(name: str) -> ChangeKind:
    """Return the registered kind `name` (KeyError when no app registered it)."""
    return _kinds[name]


def registered_kinds() -> list[str]:
    """Return the names of every registered kind."""
    return sorted(_kinds)


_role_checks: list[Callable] = []


def register_role_check(check: Callable) -> None:
    """Add `check(tenant, user, roles)`, run before a member is given `roles`; it raises to refuse."""
    if check not in _role_checks:
        _role_checks.append(check)


def run_role_checks(tenant, user, roles: list[str]) -> None:
    """Run every registered role check (an app's rule about who may hold which roles)."""
    for check in _role_checks:
        check(tenant, user, roles)
