"""Dashboard panels contributed by apps, so the dashboard depends on none of them.

An app registers a panel in its AppConfig.ready(): a callable taking the request and returning
(template_name, context) or None when it has nothing to show this member.
"""

from collections.abc import Callable

_panels: list[tuple[int, Callable]] = []


def register_panel(panel: Callable, *, order: int = 100) -> None:
    """Add `panel` to the dashboard, ordered by `order`."""
    if all(existing is not panel for _, existing in _panels):
        _panels.append((order, panel))
        _panels.sort(key=lambda item: item[0])


def dashboard_panels(request) -> list[tuple[str, dict]]:
    """Return the (template, context) of every panel that has something for this request."""
    rendered = []
    for _, panel in _panels:
        result = panel(request)
        if result is not None:
            rendered.append(result)
    return rendered
