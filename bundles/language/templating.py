"""The sandboxed Jinja environment of prompt templates, and static analysis of template sources.

Rendering is bounded (`bundles.language.limits`): the code generator routes every loop, buffer, `~`
concatenation and `in` test through the environment, and the environment charges calls, filters and
operators to the render's budget (`bundles.language.budget`) before they can grow text or take time.
"""

from __future__ import annotations

import operator
from functools import lru_cache, wraps
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bundles.language import budget as budgets
from bundles.language.limits import (
    MAX_PROMPT_CHARS,
    MAX_RANGE_ITEMS,
    PROMPT_OVER_CAP,
    RANGE_TOO_LARGE,
    RECURSION_TOO_DEEP,
    PromptTooLargeError,
)

__all__ = [
    "PromptTooLargeError",
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

# Output expressions of a loop-free template that may be joined before being measured: each value is
# bounded by the checks of the operations that built it (or is the caller's input), so joining at most
# this many of them holds at most this many times that bound before the total is refused.
MAX_JOINED_OUTPUTS = 16

REPETITION_TOO_LARGE = "repetition would produce more than {limit} items"
POWER_TOO_LARGE = "power would produce a number larger than {limit} bits"


class PromptCodeGenerator(CodeGenerator):
    """Compile templates so that loops, buffers, `~` and `in` go through the environment's budget."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        super().visit_Template(node, frame)
        # A template without loops or blocks yields a few chunks, each already bounded: it can be joined
        # first and measured after; any other is measured chunk by chunk as it streams.
        outputs = sum(1 for output in node.find_all(nodes.Output) for _ in output.nodes)
        repeats = node.find((nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock))
        self.writeline(f"streamed = {repeats is not None or outputs > MAX_JOINED_OUTPUTS}")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Iterate `environment.bounded_iter(<iterable>)`, which charges one iteration per item.
        original = node.iter
        bounded = nodes.EnvironmentAttribute("bounded_iter", lineno=original.lineno)
        node.iter = nodes.Call(bounded, [original], [], None, None, lineno=original.lineno)
        try:
            super().visit_For(node, frame)
        finally:
            node.iter = original

    def buffer(self, frame: Frame) -> None:
        # Macro bodies, `{% set %}` blocks and filter blocks collect text here, out of the render's stream.
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        if len(node.ops) != 1 or node.ops[0].op not in ("in", "notin"):
            super().visit_Compare(node, frame)
            return
        self.write(
            "(environment.bounded_contains("
            if node.ops[0].op == "in"
            else "(not environment.bounded_contains("
        )
        self.visit(node.expr, frame)
        self.write(", ")
        self.visit(node.ops[0].expr, frame)
        self.write("))")


class BoundedBuffer(list):
    """Text collected inside a render (a macro's output, a `{% set %}` block), charged as it grows."""

    __slots__ = ("chars",)

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def append(self, text: str) -> None:
        self.charge(len(text))
        super().append(text)

    def extend(self, texts: Any) -> None:
        texts = list(texts)
        self.charge(sum(len(text) for text in texts))
        super().extend(texts)

    def charge(self, length: int) -> None:
        """Charge `length` characters and refuse a buffer over MAX_PROMPT_CHARS."""
        budgets.current().spend(length)
        self.chars += length
        budgets.refuse_over_cap(self.chars, "a block of template output")


class PromptTemplate(Template):
    """A template whose render shares the open budget and stops once its output passes the cap."""

    streamed = True

    @classmethod
    def _from_namespace(cls, environment: Any, namespace: Any, globals: Any) -> Template:
        template = super()._from_namespace(environment, namespace, globals)
        template.streamed = namespace.get("streamed", True)
        return template

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Return the rendered text; raise PromptTooLargeError when a limit is passed."""
        token = budgets.open_budget()
        try:
            context = self.new_context(dict(*args, **kwargs))
            if self.streamed:
                return bounded_join(self.root_render_func(context), budgets.current())
            return measured("".join(self.root_render_func(context)), budgets.current())
        except RecursionError:
            # Macros and recursive loops nest Python frames: too deep is a limit, not a crash.
            raise PromptTooLargeError(RECURSION_TOO_DEEP) from None
        except Exception:
            self.environment.handle_exception()
        finally:
            budgets.close_budget(token)


def measured(text: str, budget: budgets.RenderBudget) -> str:
    """Return `text` after adding it to the budget's rendered total, refused past the cap."""
    budget.rendered += len(text)
    if budget.rendered > MAX_PROMPT_CHARS:
        raise PromptTooLargeError(PROMPT_OVER_CAP.format(size=budget.rendered, limit=MAX_PROMPT_CHARS))
    return text


def bounded_join(chunks: Any, budget: budgets.RenderBudget) -> str:
    """Return the chunks joined, counting them into the budget's rendered total as they stream."""
    parts = []
    total = budget.rendered
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_PROMPT_CHARS:
            raise PromptTooLargeError(
                PROMPT_OVER_CAP.format(size=f"more than {total}", limit=MAX_PROMPT_CHARS)
            )
        parts.append(chunk)
    budget.rendered = total
    return "".join(parts)


class PromptEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox with StrictUndefined whose every costly operation is charged to a budget."""

    code_generator_class = PromptCodeGenerator
    template_class = PromptTemplate
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        """Apply `*`, `**`, `+` or `%` after checking the result stays small."""
        budget = budgets.current()
        budget.spend(budgets.size(left) + budgets.size(right))
        if operator_name == "*":
            refuse_large_repetition(left, right)
            return operator.mul(left, right)
        if operator_name == "**":
            refuse_large_power(left, right)
            return operator.pow(left, right)
        if operator_name == "+":
            if isinstance(left, budgets.SIZED) and isinstance(right, budgets.SIZED):
                budgets.refuse_over_cap(budgets.size(left) + budgets.size(right), "`+`")
            return operator.add(left, right)
        if operator_name == "%" and isinstance(left, str):
            budgets.percent_format(left, right)
            return budget_checked(operator.mod(left, right), "% formatting")
        return super().call_binop(context, operator_name, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call `__obj` after charging the call and checking what it would build."""
        budget = budgets.current()
        if isinstance(__obj, (Macro, LoopContext)):
            budget.iterate()  # recursion through macros and `loop()` counts like loop iterations
        args = tuple(budgets.materialize(argument, budget) for argument in args)
        method = getattr(__obj, "__wrapped__", __obj)
        receiver = getattr(method, "__self__", None)
        if isinstance(receiver, str):
            budgets.check_method(getattr(method, "__name__", ""), receiver, args, kwargs)
        budget.spend(1 + sum(budgets.size(argument) for argument in (*args, *kwargs.values())))
        if isinstance(__obj, LoopContext) and args:
            args = (__self.bounded_iter(args[0]), *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        return budget_checked(result, f"the result of {getattr(method, '__name__', 'a call')}")

    def bounded_iter(self, iterable: Any) -> Any:
        """Yield the items of a loop's iterable, charging one iteration each."""
        budget = budgets.current()
        for item in iterable:
            budget.iterate()
            yield item

    def bounded_buffer(self) -> BoundedBuffer:
        """Return a new buffer for text collected inside the render."""
        return BoundedBuffer()

    def bounded_concat(self, parts: tuple) -> str:
        """Return the `~` concatenation of `parts`, refused when it would pass the cap."""
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        length = sum(len(text) for text in texts)
        budgets.current().spend(length)
        budgets.refuse_over_cap(length, "`~`")
        return "".join(texts)

    def bounded_contains(self, item: Any, container: Any) -> bool:
        """Return `item in container`, charging the scan of the container."""
        if not isinstance(container, (dict, set, frozenset, range)):
            budgets.current().spend(budgets.size(container))
        return item in container


def budget_checked(result: Any, what: str) -> Any:
    """Return `result` after charging its size and checking it against the cap."""
    budgets.current().spend(budgets.size(result))
    return budgets.check_size(result, what)


def bounded_range(*args: int) -> range:
    """Return `range(*args)`, refused past MAX_RANGE_ITEMS items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE_ITEMS:
        raise PromptTooLargeError(RANGE_TOO_LARGE.format(size=len(numbers), limit=MAX_RANGE_ITEMS))
    return numbers


def guarded_filter(name: str, function: Any) -> Any:
    """Return `function` (a filter) charging its arguments and result and checking the widths it takes."""
    skip = 1 if hasattr(function, "jinja_pass_arg") else 0

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = budgets.current()
        args = tuple(budgets.materialize(argument, budget) for argument in args)
        budgets.check_filter(name, args[skip:], kwargs)
        budget.spend(1 + sum(budgets.size(argument) for argument in args[skip:]))
        result = function(*args, **kwargs)
        return result if budgets.is_lazy(result) else budget_checked(result, f"the {name} filter")

    return guarded


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
    environment.globals["range"] = bounded_range
    environment.filters = {
        name: guarded_filter(name, function) for name, function in environment.filters.items()
    }
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
