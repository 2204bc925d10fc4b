"""The sandboxed Jinja environment of prompt templates, and static analysis of template sources."""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

__all__ = [
    "SecurityError",
    "TemplateSyntaxError",
    "template_environment",
    "template_free_names",
    "template_variables",
]

INPUT_VARIABLE = "input"
# Prompts are bounded text: a repetition or power larger than this is refused rather than allocated.
MAX_REPEATED_LENGTH = 100_000
MAX_POWER_BITS = 4_096
# Jinja's default globals minus the object-rich helpers (cycler, joiner, lipsum) a prompt never needs.
KEPT_GLOBALS = ("range", "dict", "namespace")
# Read-only mapping methods a template may call on `input` (the sandbox refuses the mutating ones).
MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})

REPETITION_TOO_LARGE = "repetition would produce more than {limit} items"
POWER_TOO_LARGE = "power would produce a number larger than {limit} bits"


class PromptEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox with StrictUndefined that also refuses memory-exhausting `*` and `**`."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        """Apply `*` or `**` after checking the result stays small."""
        if operator_name == "*":
            refuse_large_repetition(left, right)
            return operator.mul(left, right)
        if operator_name == "**":
            refuse_large_power(left, right)
            return operator.pow(left, right)
        return super().call_binop(context, operator_name, left, right)


def refuse_large_repetition(left: Any, right: Any) -> None:
    """Raise SecurityError when `left * right` repeats a sequence beyond MAX_REPEATED_LENGTH."""
    for sequence, count in ((left, right), (right, left)):
        repeats = isinstance(sequence, (str, list, tuple)) and isinstance(count, int)
        if repeats and len(sequence) * count > MAX_REPEATED_LENGTH:
            raise SecurityError(REPETITION_TOO_LARGE.format(limit=MAX_REPEATED_LENGTH))


def refuse_large_power(base: Any, exponent: Any) -> None:
    """Raise SecurityError when an integer power would exceed MAX_POWER_BITS."""
    integers = isinstance(base, int) and isinstance(exponent, int)
    if integers and abs(base) > 1 and exponent > 0 and abs(base).bit_length() * exponent > MAX_POWER_BITS:
        raise SecurityError(POWER_TOO_LARGE.format(limit=MAX_POWER_BITS))


@lru_cache(maxsize=1)
def template_environment() -> PromptEnvironment:
    """Return the shared sandboxed environment every prompt template is compiled in."""
    environment = PromptEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.globals = {name: environment.globals[name] for name in KEPT_GLOBALS}
    return environment


def template_variables(source: str) -> set[str]:
    """Return the field names the template reads from `input`; raise TemplateSyntaxError with lineno."""
    tree = template_environment().parse(source)
    names: set[str] = set()
    methods: set[int] = set()
    for call in tree.find_all(nodes.Call):
        if is_input_access(call.node, nodes.Getattr) and call.node.attr in MAPPING_METHODS:
            methods.add(id(call.node))  # `input.items()` calls a method; it reads no field named "items"
            if call.node.attr == "get" and call.args and is_string_constant(call.args[0]):
                names.add(call.args[0].value)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not is_input_access(node, (nodes.Getattr, nodes.Getitem)) or id(node) in methods:
            continue
        if isinstance(node, nodes.Getattr):
            names.add(node.attr)
        elif is_string_constant(node.arg):
            names.add(node.arg.value)
    return names


def is_input_access(node: nodes.Node, kinds: type | tuple[type, ...]) -> bool:
    """Return True when `node` is an attribute or item access directly on `input`."""
    target = getattr(node, "node", None)
    return isinstance(node, kinds) and isinstance(target, nodes.Name) and target.name == INPUT_VARIABLE


def is_string_constant(node: nodes.Node) -> bool:
    """Return True for a string literal node."""
    return isinstance(node, nodes.Const) and isinstance(node.value, str)


def template_free_names(source: str) -> set[str]:
    """Return the top-level names a template reads that it does not define itself (e.g. {"input"})."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(template_environment().parse(source))) - set(KEPT_GLOBALS)
