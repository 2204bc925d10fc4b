"""Parse CEL source into a small tree with offsets, so the cost of an expression is bounded by its shape.

The `cel` package compiles and evaluates but exposes no syntax tree. This parser follows the CEL grammar
(github.com/google/cel-spec, doc/langdef.md): it only ever sees sources `cel.compile` accepted, so it is
lenient where CEL is strict and never has to explain a syntax error of its own.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

UNKNOWN = object()  # the value of a node that is not a literal

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>[rRbB]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,()\[\]{}])
    """,
    re.X | re.S,
)
# Binary operators by precedence, loosest first (`?:` is handled apart).
_BINARY = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">=", "in"), ("+", "-"), ("*", "/", "%"))
_PRECEDENCE = {op: level for level, ops in enumerate(_BINARY, start=1) for op in ops}
_KEYWORDS = {"true": True, "false": False, "null": None}


class CelShapeError(ValueError):
    """A source the shape parser cannot read (too deeply nested, or not CEL)."""


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a CEL expression: its kind, where it starts, and its parts.

    kind: literal, ident, select (target.name), index (args: target, key), call (name, optional
    target = receiver, args), list, map (args: key, value, key, value, ...), struct, unary, binary, cond.
    """

    kind: str
    offset: int
    name: str = ""
    args: tuple[Node, ...] = ()
    target: Node | None = None
    value: Any = UNKNOWN


def parse(source: str) -> Node:
    """Return the tree of a CEL expression; raise CelShapeError when it cannot be read."""
    parser = _Parser(source)
    try:
        tree = parser.expression()
    except RecursionError:
        raise CelShapeError("the expression nests too deeply") from None
    if parser.peek() is not None:
        raise CelShapeError(f"unexpected {parser.peek()[1]!r} at offset {parser.peek()[2]}")
    return tree


def position(source: str, offset: int) -> tuple[int, int]:
    """Return the 1-based (line, column) of `offset` in `source`."""
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def tokens(source: str) -> list[tuple[str, str, int]]:
    """Return (kind, text, offset) for every token of `source`, without spaces and comments."""
    found, offset = [], 0
    while offset < len(source):
        match = _TOKEN.match(source, offset)
        if match is None:
            raise CelShapeError(f"unexpected character {source[offset]!r} at offset {offset}")
        if match.lastgroup != "space":
            found.append((match.lastgroup, match.group(), offset))
        offset = match.end()
    return found


def literal_value(kind: str, text: str) -> Any:
    """Return the Python value of a string or number literal (its text when it cannot be decoded)."""
    if kind == "number":
        text = text.rstrip("uU")
        try:
            return int(text, 0) if not re.search(r"[.eE]", text) or text[:2] in ("0x", "0X") else float(text)
        except ValueError:
            return 0
    prefix = re.match(r"[rRbB]*", text).group()
    body = text[len(prefix) :]
    try:
        value = ast.literal_eval(("r" if "r" in prefix.lower() else "") + body)
    except (ValueError, SyntaxError):
        value = body.strip("'\"")
    return value.encode() if "b" in prefix.lower() and isinstance(value, str) else value


class _Parser:
    """A precedence-climbing parser over the token list."""

    def __init__(self, source: str):
        self.tokens = tokens(source)
        self.index = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None or (text is not None and token[1] != text):
            raise CelShapeError(f"expected {text or 'a token'}")
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token[1] == text and token[0] != "string":
            self.index += 1
            return True
        return False

    def expression(self) -> Node:
        condition = self.binary(1)
        token = self.peek()
        if token is not None and token[1] == "?" and token[0] == "op":
            self.take()
            when_true = self.binary(1)
            self.take(":")
            return Node("cond", condition.offset, args=(condition, when_true, self.expression()))
        return condition

    def binary(self, level: int) -> Node:
        if level > len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            token = self.peek()
            if token is None or token[0] == "string" or _PRECEDENCE.get(token[1]) != level:
                return left
            self.take()
            right = self.binary(level + 1)
            left = Node("binary", token[2], name=token[1], args=(left, right))

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in ("!", "-"):
            self.take()
            return Node("unary", token[2], name=token[1], args=(self.unary(),))
        return self.member(self.primary())

    def member(self, node: Node) -> Node:
        while True:
            if self.accept("."):
                self.accept("?")
                _, name, offset = self.take()
                if self.accept("("):
                    node = Node("call", offset, name=name, target=node, args=self.items(")"))
                else:
                    node = Node("select", offset, name=name, target=node)
            elif self.accept("["):
                self.accept("?")
                key = self.expression()
                self.take("]")
                node = Node("index", key.offset, args=(node, key))
            elif self.peek() is not None and self.peek()[1] == "{" and node.kind in ("ident", "select"):
                self.take()
                node = Node("struct", node.offset, name=node.name, args=self.entries("}"))
            else:
                return node

    def primary(self) -> Node:
        kind, text, offset = self.take()
        if kind in ("string", "number"):
            return Node("literal", offset, value=literal_value(kind, text))
        if kind == "ident":
            if text in _KEYWORDS:
                return Node("literal", offset, value=_KEYWORDS[text])
            if self.accept("("):
                return Node("call", offset, name=text, args=self.items(")"))
            return Node("ident", offset, name=text)
        if text == ".":
            return self.primary()
        if text == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if text == "[":
            return Node("list", offset, args=self.items("]"))
        if text == "{":
            return Node("map", offset, args=self.entries("}"))
        raise CelShapeError(f"unexpected {text!r} at offset {offset}")

    def items(self, closing: str) -> tuple[Node, ...]:
        found = []
        while not self.accept(closing):
            self.accept("?")
            found.append(self.expression())
            if not self.accept(","):
                self.take(closing)
                break
        return tuple(found)

    def entries(self, closing: str) -> tuple[Node, ...]:
        found = []
        while not self.accept(closing):
            self.accept("?")
            found.append(self.expression())
            self.take(":")
            found.append(self.expression())
            if not self.accept(","):
                self.take(closing)
                break
        return tuple(found)
