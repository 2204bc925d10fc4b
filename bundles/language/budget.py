"""The budget of one render: every operation that can grow text or take time is charged or checked first.

The sandbox routes loop iterations, calls, filters, `~` concatenation, `in`, and the `+ * ** %` operators
through here (see `templating.PromptEnvironment`). Growth that depends on a parameter (a width, a count, a
repetition) is checked before the value is built; growth by a bounded factor (concatenating two values
that are each under the cap) is checked right after. The counters are deterministic — a deadline is not —
so a decision replays exactly, as verification requires.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from itertools import islice
from typing import Any

from bundles.language.limits import (
    DYNAMIC_WIDTH,
    MAX_FORMAT_WIDTH,
    MAX_LOOP_ITERATIONS,
    MAX_PROMPT_CHARS,
    MAX_RENDER_WORK,
    TOO_MANY_ITERATIONS,
    TOO_MUCH_WORK,
    VALUE_OVER_CAP,
    WIDTH_TOO_LARGE,
    PromptTooLargeError,
)

# `%` conversion specifiers: flags, width, precision (each may be `*`), length modifier, type.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([diouxXeEfFgGcrsa%])")
_DIGITS = re.compile(r"\d+")
# The parameter of a method or filter that sets a width (argument position after the value, keyword).
WIDTH_PARAMETERS = {
    "center": (0, "width"),
    "ljust": (0, "width"),
    "rjust": (0, "width"),
    "zfill": (0, "width"),
    "expandtabs": (0, "tabsize"),
    "indent": (0, "width"),
    "tojson": (0, "indent"),
}
SIZED = (str, bytes, list, tuple, dict, range, Mapping)


class RenderBudget:
    """What one render has spent: iterations (loops, macro calls), work, and characters rendered."""

    __slots__ = ("iterations", "rendered", "work")

    def __init__(self) -> None:
        self.iterations = 0
        self.work = 0
        self.rendered = 0  # system and prompt of one execution share the cap

    def iterate(self, count: int = 1) -> None:
        """Charge loop iterations or calls; raise PromptTooLargeError past MAX_LOOP_ITERATIONS."""
        self.iterations += count
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise PromptTooLargeError(TOO_MANY_ITERATIONS.format(limit=MAX_LOOP_ITERATIONS))

    def spend(self, amount: int) -> None:
        """Charge work; raise PromptTooLargeError past MAX_RENDER_WORK."""
        self.work += amount
        if self.work > MAX_RENDER_WORK:
            raise PromptTooLargeError(TOO_MUCH_WORK.format(limit=MAX_RENDER_WORK))


_CURRENT: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


def open_budget() -> Token | None:
    """Open a budget for the renders that follow, unless one is open (nested renders share it)."""
    if _CURRENT.get() is not None:
        return None
    return _CURRENT.set(RenderBudget())


def close_budget(token: Token | None) -> None:
    """Close the budget `open_budget` opened (nothing when it reused an open one)."""
    if token is not None:
        _CURRENT.reset(token)


def current() -> RenderBudget:
    """Return the open budget; outside a render (a template called directly) a fresh one per operation."""
    return _CURRENT.get() or RenderBudget()


def size(value: Any) -> int:
    """Return the length of a sized value (characters or items), 1 for anything else."""
    try:
        return len(value) if isinstance(value, SIZED) else 1
    except TypeError:
        return 1


def check_size(value: Any, what: str) -> Any:
    """Return `value` when it stays under MAX_PROMPT_CHARS; raise PromptTooLargeError otherwise."""
    if isinstance(value, SIZED) and len(value) > MAX_PROMPT_CHARS:
        raise PromptTooLargeError(VALUE_OVER_CAP.format(what=what, size=len(value), limit=MAX_PROMPT_CHARS))
    return value


def refuse_over_cap(estimate: int, what: str) -> None:
    """Raise PromptTooLargeError when a value about to be built would pass MAX_PROMPT_CHARS."""
    if estimate > MAX_PROMPT_CHARS:
        raise PromptTooLargeError(VALUE_OVER_CAP.format(what=what, size=estimate, limit=MAX_PROMPT_CHARS))


def refuse_wide(width: Any, what: str) -> int:
    """Return a width as an int, refusing one over MAX_FORMAT_WIDTH (strings count by their length)."""
    if isinstance(width, str):
        width = len(width)
    if isinstance(width, bool) or not isinstance(width, int):
        return 0
    if width > MAX_FORMAT_WIDTH:
        raise PromptTooLargeError(WIDTH_TOO_LARGE.format(what=what, width=width, limit=MAX_FORMAT_WIDTH))
    return width


def text_size(value: Any) -> int:
    """Return how many characters `value` takes as text, bounded to what a render may hold."""
    return len(value) if isinstance(value, str) else len(str(value)[: MAX_PROMPT_CHARS + 1])


def percent_format(template: str, arguments: Any, what: str = "% formatting") -> None:
    """Refuse `template % arguments` when a width or precision is too large or the result too long."""
    specs = _PERCENT_SPEC.findall(template)
    widest = 0
    for width, precision, _ in specs:
        if width == "*" or precision == "*":
            raise PromptTooLargeError(DYNAMIC_WIDTH.format(what=f"a width in {what}"))
        widest = max(widest, refuse_wide(int(width or 0), f"a width in {what}"))
        refuse_wide(int(precision or 0), f"a precision in {what}")
    values = arguments.values() if isinstance(arguments, Mapping) else arguments
    values = values if isinstance(values, (tuple, list)) or isinstance(arguments, Mapping) else [values]
    largest = max((text_size(value) for value in values), default=0)
    refuse_over_cap(len(template) + len(specs) * max(widest, largest), what)


def brace_format(template: str, args: tuple, kwargs: Mapping[str, Any], what: str = "str.format") -> None:
    """Refuse `template.format(...)` when a width or precision is too large or the result too long."""
    fields = widest = 0
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise PromptTooLargeError(DYNAMIC_WIDTH.format(what=f"a width in {what}"))
        for digits in _DIGITS.findall(spec or ""):
            widest = max(widest, refuse_wide(int(digits), f"a width or precision in {what}"))
    values = [*args, *kwargs.values()]
    largest = max((text_size(value) for value in values), default=0)
    refuse_over_cap(len(template) + fields * max(widest, largest), what)


def joined_size(items: list[Any], separator: Any) -> int:
    """Return the length of joining `items` with `separator` as text."""
    return sum(text_size(item) for item in items) + max(len(items) - 1, 0) * text_size(separator)


def materialize(value: Any, budget: RenderBudget) -> Any:
    """Return an iterator argument as a list, charging each item (a generator has no size to check)."""
    if not isinstance(value, Iterator):
        return value
    remaining = max(MAX_RENDER_WORK - budget.work, 0)
    items = list(islice(value, remaining + 1))
    budget.spend(len(items))
    return items


def check_method(name: str, receiver: Any, args: tuple, kwargs: Mapping[str, Any]) -> None:
    """Refuse a str method call whose result would be too wide or too long, before it runs."""
    what = f"str.{name}"
    if name in WIDTH_PARAMETERS:
        position, keyword = WIDTH_PARAMETERS[name]
        width = kwargs.get(keyword, args[position] if len(args) > position else 0)
        width = refuse_wide(width, f"the {keyword} of {what}")
        if name == "expandtabs":
            refuse_over_cap(len(receiver) * max(width, 1), what)
    elif name in ("format", "format_map"):
        mapping = args[0] if name == "format_map" and args else kwargs
        brace_format(receiver, args if name == "format" else (), mapping, what)
    elif name == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = receiver.count(old) if old else len(receiver) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        refuse_over_cap(len(receiver) + count * max(len(new) - len(old), 0), what)
    elif name == "join" and args:
        refuse_over_cap(joined_size(args[0], receiver), what)


def is_lazy(value: Any) -> bool:
    """Return True for a result computed on demand (a generator): charged when something consumes it."""
    return isinstance(value, Iterator)


def check_filter(name: str, values: tuple, kwargs: Mapping[str, Any]) -> None:
    """Refuse a filter call whose result would be too wide or too long, before it runs."""
    subject = values[0] if values else None
    if name == "format" and isinstance(subject, str):
        percent_format(subject, kwargs or values[1:], "the format filter")
    elif name in WIDTH_PARAMETERS:
        position, keyword = WIDTH_PARAMETERS[name]
        width = kwargs.get(keyword, values[position + 1] if len(values) > position + 1 else 0)
        width = refuse_wide(width, f"the {keyword} of the {name} filter")
        if name == "indent" and isinstance(subject, str):
            refuse_over_cap(len(subject) + (subject.count("\n") + 1) * width, "the indent filter")
    elif name == "replace" and isinstance(subject, str) and len(values) >= 3:
        check_method("replace", subject, values[1:], {})
    elif name == "join" and values:
        items = list(subject) if isinstance(subject, (str, list, tuple, dict, range, Mapping)) else []
        refuse_over_cap(joined_size(items, kwargs.get("d", values[1] if len(values) > 1 else "")), "join")
    elif name == "batch" and len(values) > 1 and isinstance(values[1], int):
        refuse_over_cap(values[1], "the batch filter")
    elif name == "wordwrap" and isinstance(subject, str):
        wrapstring = kwargs.get("wrapstring", values[3] if len(values) > 3 else "\n") or "\n"
        width = kwargs.get("width", values[1] if len(values) > 1 else 79)
        lines = len(subject) // max(width if isinstance(width, int) else 1, 1) + 1
        refuse_over_cap(len(subject) + lines * text_size(wrapstring), "the wordwrap filter")
