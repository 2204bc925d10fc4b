"""Extension points through which apps above bundles add facts and panels to its API and console.

bundles may not import promotions (DESIGN §3), yet a bundle's detail should show its live deployments and a
version's gate status. So apps register callables here, in their AppConfig.ready(), and bundles merges what
they return:

    from bundles import extensions

    class PromotionsConfig(AppConfig):
        def ready(self):
            extensions.register_version_facts(version_gate_facts)  # fn(version) -> dict
            extensions.register_bundle_facts(bundle_deployment_facts)  # fn(bundle) -> dict
            extensions.register_version_panel(version_gates_panel)  # fn(request, version) -> (tpl, ctx)
            extensions.register_bundle_panel(deployments_panel)  # fn(request, bundle) -> (tpl, ctx)

Facts are JSON-compatible dicts merged into the detail APIs (`GET /api/v1/bundles/{name}/` and
`GET /api/v1/bundles/{name}/versions/{version}/`), e.g. {"gates": {...}} or {"deployments": [...]}. Their
keys must not collide with the core fields of those responses nor with another extension's keys (a collision
raises `FactCollision`, a programming error). The console's bundle and version pages list the same facts.

Panels are rendered on the console pages, by `order`, then in registration order: the callable receives the
request and the bundle or version and returns (template_name, context), or None to show nothing to this
member. As on the dashboard, the page includes the template with the context as the variable `panel`
(`{% include template_name with panel=context %}`), inside the page's request context, so `csrf_token`,
`user` and `capabilities` work in its forms.

Callables run once per detail request (never per item of a list), so they may query the database; keep each
to a constant number of queries. Registering the same callable twice is a no-op.
"""

from collections.abc import Callable
from typing import Any

FACT_COLLISION = "Extension {fn} returned the key {key!r}, which is already set by {owner}."

_version_facts: list[tuple[int, Callable]] = []
_bundle_facts: list[tuple[int, Callable]] = []
_version_panels: list[tuple[int, Callable]] = []
_bundle_panels: list[tuple[int, Callable]] = []


class FactCollision(RuntimeError):
    """Two providers (or a provider and the core response) claim the same key."""


def _register(registry: list[tuple[int, Callable]], fn: Callable, order: int) -> None:
    """Add `fn` to `registry` once, keeping the registry sorted by order (stable for equal orders)."""
    if all(existing is not fn for _, existing in registry):
        registry.append((order, fn))
        registry.sort(key=lambda item: item[0])


def register_version_facts(fn: Callable[[Any], dict], *, order: int = 100) -> None:
    """Merge `fn(version)` into every version detail (API and console)."""
    _register(_version_facts, fn, order)


def register_bundle_facts(fn: Callable[[Any], dict], *, order: int = 100) -> None:
    """Merge `fn(bundle)` into every bundle detail (API and console)."""
    _register(_bundle_facts, fn, order)


def register_version_panel(fn: Callable[[Any, Any], tuple[str, dict] | None], *, order: int = 100) -> None:
    """Render `fn(request, version)` -> (template, context) on the console's version page."""
    _register(_version_panels, fn, order)


def register_bundle_panel(fn: Callable[[Any, Any], tuple[str, dict] | None], *, order: int = 100) -> None:
    """Render `fn(request, bundle)` -> (template, context) on the console's bundle page."""
    _register(_bundle_panels, fn, order)


def _merged(registry: list[tuple[int, Callable]], subject: Any, reserved: set[str]) -> dict[str, Any]:
    """Return the union of every provider's facts about `subject`, refusing colliding keys."""
    merged: dict[str, Any] = {}
    owners = dict.fromkeys(reserved, "the core response")
    for _, fn in registry:
        for key, value in (fn(subject) or {}).items():
            if key in owners:
                raise FactCollision(FACT_COLLISION.format(fn=_name(fn), key=key, owner=owners[key]))
            owners[key] = _name(fn)
            merged[key] = value
    return merged


def version_facts(version: Any, *, reserved: set[str] = frozenset()) -> dict[str, Any]:
    """Return the facts every registered provider adds to `version` (keys not in `reserved`)."""
    return _merged(_version_facts, version, set(reserved))


def bundle_facts(bundle: Any, *, reserved: set[str] = frozenset()) -> dict[str, Any]:
    """Return the facts every registered provider adds to `bundle` (keys not in `reserved`)."""
    return _merged(_bundle_facts, bundle, set(reserved))


def version_panels(request: Any, version: Any) -> list[tuple[str, dict]]:
    """Return the (template, context) of every version panel that has something for this request."""
    return [panel for _, fn in _version_panels if (panel := fn(request, version)) is not None]


def bundle_panels(request: Any, bundle: Any) -> list[tuple[str, dict]]:
    """Return the (template, context) of every bundle panel that has something for this request."""
    return [panel for _, fn in _bundle_panels if (panel := fn(request, bundle)) is not None]


def _name(fn: Callable) -> str:
    """Return a readable dotted name of a callable."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
