"""Bound what a CEL expression may cost, before it runs: the `cel` evaluator cannot be interrupted.

The cost is an upper bound computed from the expression's tree and the sizes of the values it reads: a
comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) costs its body once per element of its range,
so nested comprehensions multiply; `+` copies both operands; comparisons, `in`, `contains` and `matches`
scan their operands. When the values are known (at evaluation) their real sizes are used; at validation
every collection and string of the input is assumed to hold NOMINAL_SIZE items or characters. One unit is
about one step of the evaluator (0.1 to 1 µs here), so MAX_EVALUATION_COST is tens of milliseconds at most.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.syntax import UNKNOWN, Node

# Longest expression accepted, in characters (a policy condition is one line of logic, not a program).
MAX_EXPRESSION_LENGTH = 4_096
# Deepest nesting of comprehensions: each level multiplies the cost by the size of its range.
MAX_COMPREHENSION_NESTING = 3
# Most cost units one evaluation may take (estimated before it starts).
MAX_EVALUATION_COST = 100_000
# What validation assumes for the length of a list, map or string it cannot see (the input's).
NOMINAL_SIZE = 32
# Characters or items the evaluator compares or copies in the time of one step.
SCAN_BATCH = 16

COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})
# Functions whose cost does not depend on the size of their arguments.
CONSTANT_FUNCTIONS = frozenset({"size", "has", "type", "dyn", "int", "uint", "double", "bool", "duration"})
SCANNING_FUNCTIONS = frozenset({"contains", "string", "bytes", "timestamp"})
PREFIX_FUNCTIONS = frozenset({"startsWith", "endsWith"})
# A regex is compiled on every call; repetition counts expand its compiled size.
REGEX_COMPILE_FACTOR = 4
DYNAMIC_REGEX_EXPANSION = 100
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
_SCALAR_TYPES = (bool, int, float, type(None))
_FLAT_TYPES = frozenset({str, bytes, bool, int, float, type(None)})


class Shape:
    """An upper bound of a value: its length (1 for scalars) and the length of anything inside it."""

    __slots__ = ("_inner", "size", "value")

    def __init__(self, size: int, inner: int | None = None, value: Any = UNKNOWN):
        self.size = size
        self._inner = inner
        self.value = value

    @classmethod
    def of(cls, value: Any, memo: dict[int, Shape] | None = None) -> Shape:
        """Return the exact shape of a known value (shared through `memo`, so each value is walked once)."""
        if memo is not None and isinstance(value, (list, tuple, Mapping)):
            shape = memo.get(id(value))
            if shape is None or shape.value is not value:
                shape = memo[id(value)] = cls.of(value)
            return shape
        if isinstance(value, _SCALAR_TYPES):
            return cls(1, 0, value)
        if isinstance(value, (str, bytes)):
            return cls(len(value), 0, value)
        if isinstance(value, (list, tuple, Mapping)):
            return cls(len(value), None, value)
        return cls(1, 0, value)

    @property
    def inner(self) -> int:
        """Return the largest length of a value nested anywhere inside this one."""
        if self._inner is None:
            self._inner = nested_size(self.value)
        return self._inner

    def element(self) -> Shape:
        """Return the bound of one element (or key) of this value."""
        return Shape(max(self.inner, 1), self.inner)


SCALAR = Shape(1, 0)


def nested_size(value: Any) -> int:
    """Return the largest length of any list, map, string or bytes nested inside `value` (not itself)."""
    largest, pending = 0, [value]
    while pending:
        current = pending.pop()
        if isinstance(current, Mapping):
            items: Any = [*current.keys(), *current.values()]
        elif isinstance(current, (list, tuple)):
            items = current
        else:
            continue
        for item in items:
            kind = type(item)
            if kind in _FLAT_TYPES:  # the common case first: this walk is on the hot path of big inputs
                if kind is str or kind is bytes:
                    length = len(item)
                    if length > largest:
                        largest = length
            elif isinstance(item, (str, bytes, list, tuple, Mapping)):
                largest = max(largest, len(item))
                if not isinstance(item, (str, bytes)):
                    pending.append(item)
    return largest


@dataclass(frozen=True, slots=True)
class Estimate:
    """The bounded cost of one evaluation, or of the worst input validation can imagine."""

    cost: int
    offset: int  # the innermost sub-expression over the budget (the expression's start when none is)


def nesting(node: Node, depth: int = 0) -> tuple[int, int]:
    """Return (deepest comprehension nesting, offset of the deepest comprehension) in `node`."""
    if is_comprehension(node):
        depth += 1
    best = (depth, node.offset) if is_comprehension(node) else (depth, -1)
    for child in children(node):
        found = nesting(child, depth)
        if found[0] > best[0] or (found[0] == best[0] and best[1] < 0):
            best = found
    return best


def children(node: Node) -> tuple[Node, ...]:
    """Return the direct sub-expressions of `node`."""
    return ((node.target,) if node.target is not None else ()) + node.args


def is_comprehension(node: Node) -> bool:
    """Return True for a macro that iterates: `range.exists(x, ...)` and its kin."""
    return (
        node.kind == "call"
        and node.target is not None
        and node.name in COMPREHENSIONS
        and len(node.args) in (2, 3)
        and node.args[0].kind == "ident"
    )


def estimate(tree: Node, variables: Mapping[str, Any] | None, budget: int = MAX_EVALUATION_COST) -> Estimate:
    """Return the cost bound of evaluating `tree` with `variables` (None: at NOMINAL_SIZE, for validation)."""
    estimator = _Estimator(variables, budget)
    cost, _ = estimator.cost(tree, {})  # linear in the tree: it never iterates a value
    return Estimate(cost, tree.offset if estimator.over is None else estimator.over)


def is_size_independent(tree: Node) -> bool:
    """Return True when the cost does not grow with the input: evaluation then needs no estimate."""
    small = _Estimator(None, None, nominal=NOMINAL_SIZE).cost(tree, {})[0]
    large = _Estimator(None, None, nominal=NOMINAL_SIZE * 100).cost(tree, {})[0]
    return small == large


class _Estimator:
    """Walks a tree once, returning (cost, shape) per node and noting where the budget is first passed."""

    def __init__(self, variables: Mapping[str, Any] | None, budget: int | None, nominal: int = NOMINAL_SIZE):
        self.variables = variables
        self.budget = budget
        self.nominal = Shape(nominal, nominal)
        self.over: int | None = None
        self.memo: dict[int, Shape] = {}

    def charge(self, cost: int, node: Node) -> int:
        if self.over is None and self.budget is not None and cost > self.budget:
            self.over = node.offset
        return cost

    def cost(self, node: Node, scope: dict[str, Shape]) -> tuple[int, Shape]:
        kind = node.kind
        if kind == "literal":
            return 1, Shape.of(node.value)
        if kind == "ident":
            return 1, self.variable(node.name, scope)
        if kind == "select":
            spent, target = self.cost(node.target, scope)
            return spent + 1, field_of(target, node.name, self.memo)
        if kind == "index":
            (spent, target), (key_cost, key) = self.cost(node.args[0], scope), self.cost(node.args[1], scope)
            return spent + key_cost + 1, field_of(target, key.value, self.memo)
        if kind == "call" and is_comprehension(node):
            return self.comprehension(node, scope)
        parts = [self.cost(child, scope) for child in children(node)]
        spent = sum(cost for cost, _ in parts) + 1
        shapes = [shape for _, shape in parts]
        if kind in ("list", "map", "struct"):
            size = len(shapes) // 2 if kind == "map" else len(shapes)
            largest = max((max(shape.size, shape.inner) for shape in shapes), default=0)
            return self.charge(spent, node), Shape(size, largest)
        if kind == "unary":
            return spent, SCALAR
        if kind == "cond":
            left, right = shapes[1], shapes[2]
            return spent, Shape(max(left.size, right.size), max(left.inner, right.inner))
        if kind == "binary":
            extra, shape = binary(node.name, shapes[0], shapes[1])
        else:
            extra, shape = call(node.name, shapes)
        return self.charge(spent + extra, node), shape

    def variable(self, name: str, scope: dict[str, Shape]) -> Shape:
        if name in scope:
            return scope[name]
        if self.variables is not None and name in self.variables:
            return Shape.of(self.variables[name], self.memo)
        return self.nominal

    def comprehension(self, node: Node, scope: dict[str, Shape]) -> tuple[int, Shape]:
        spent, source = self.cost(node.target, scope)
        length = source.size
        inner_scope = {**scope, node.args[0].name: source.element()}
        body = [self.cost(argument, inner_scope) for argument in node.args[1:]]
        per_element = sum(cost for cost, _ in body) + 2
        # `map` and `filter` append to an immutable list: the evaluator copies it once per element.
        accumulation = length * length // 2 if node.name in ("map", "filter") else 0
        total = self.charge(spent + length * per_element + accumulation, node)
        if node.name == "map":
            result = body[-1][1]
            return total, Shape(length, max(result.size, result.inner))
        if node.name == "filter":
            return total, Shape(length, source.inner)
        return total, SCALAR


def field_of(target: Shape, key: Any, memo: dict[int, Shape]) -> Shape:
    """Return the shape of `target.key` / `target[key]`: exact when both are known."""
    value = target.value
    if value is not UNKNOWN and key is not UNKNOWN:
        try:
            if isinstance(value, Mapping) and key in value:
                return Shape.of(value[key], memo)
            if isinstance(value, (list, tuple)) and type(key) is int and -len(value) <= key < len(value):
                return Shape.of(value[key], memo)
        except TypeError:
            pass  # an unhashable key: CEL fails there too
    return target.element()


def binary(operator: str, left: Shape, right: Shape) -> tuple[int, Shape]:
    """Return the extra cost and the result shape of a binary operator."""
    if operator == "+":
        if isinstance(left.value, _SCALAR_TYPES) or isinstance(right.value, _SCALAR_TYPES):
            return 1, SCALAR  # numbers: CEL adds only operands of one type
        size = left.size + right.size  # a copy of both operands' top level (their items are shared)
        return size // SCAN_BATCH + 1, Shape(size, max(left.inner, right.inner))
    if operator == "in":
        probe = min(weight(left), weight(Shape(max(right.inner, 1), 0)))
        return max(right.size, 1) * probe, SCALAR
    if operator in ("==", "!=", "<", "<=", ">", ">="):
        return min(weight(left), weight(right)), SCALAR
    return 1, SCALAR


def call(name: str, arguments: list[Shape]) -> tuple[int, Shape]:
    """Return the extra cost and the result shape of a function or method call (receiver first)."""
    if name in CONSTANT_FUNCTIONS:
        return 1, SCALAR
    if name in PREFIX_FUNCTIONS:
        return (weight(arguments[-1]) if arguments else 1), SCALAR
    if name == "matches" and len(arguments) == 2:
        return weight(arguments[0]) + REGEX_COMPILE_FACTOR * regex_weight(arguments[1]), SCALAR
    total = sum(weight(shape) for shape in arguments)
    if name in SCANNING_FUNCTIONS:
        return total, Shape(max(total, 32), 0)
    # Unknown to this model (a timestamp accessor, a function added later): as costly as its arguments.
    return total, Shape(max(total, 1), max((shape.inner for shape in arguments), default=0))


def weight(shape: Shape) -> int:
    """Return the cost units of reading the whole value once (characters and items come in batches)."""
    return max(shape.size, 1) * max(shape.inner, 1) // SCAN_BATCH + 1


def regex_weight(pattern: Shape) -> int:
    """Return the compiled size bound of a regex: its length times its repetition counts."""
    if not isinstance(pattern.value, str):
        return max(pattern.size, 1) * DYNAMIC_REGEX_EXPANSION
    expansion = 1
    for low, high in _REPEAT.findall(pattern.value):
        expansion *= max(int(high or low or 1), 1)
    return len(pattern.value) * expansion // SCAN_BATCH + 1
