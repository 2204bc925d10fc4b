"""Canonical JSON (RFC 8785, JCS): the one encoder behind every hash — records, digests, decisions.

It writes the same bytes as `rfc8785.dumps` (the tests compare them on awkward values and thousands of
numbers) at a quarter of the cost, which matters on the runtime's hot path.
"""

from json.encoder import encode_basestring as encode_json_string  # escapes exactly as RFC 8785 requires
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
CanonicalizationError = rfc8785.CanonicalizationError


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON of `value`; raise CanonicalizationError if it is not I-JSON."""
    # Same bytes as rfc8785.dumps (the tests compare them) at a quarter of the cost: the decision hash
    # is on the hot path of every execution.
    parts: list[str] = []
    try:
        encode_canonical(value, parts)
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate is not I-JSON either
        raise rfc8785.CanonicalizationError(str(error)) from error


def encode_canonical(value: Any, parts: list[str]) -> None:
    """Append the canonical JSON text of `value` to `parts`."""
    kind = type(value)
    if kind is str:
        parts.append(encode_json_string(value))
    elif kind is dict:
        encode_canonical_object(value, parts)
    elif kind is list or kind is tuple:
        separator = "["
        for item in value:
            parts.append(separator)
            encode_canonical(item, parts)
            separator = ","
        parts.append("]" if value else "[]")
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise rfc8785.IntegerDomainError(value)
        parts.append(str(value))
    elif kind is float:
        parts.append(canonical_number(value))
    elif isinstance(value, str):  # str subclasses (enum members of TextChoices) encode as their text
        parts.append(encode_json_string(str(value)))
    elif isinstance(value, int) and not isinstance(value, bool):
        encode_canonical(int(value), parts)
    else:
        raise rfc8785.CanonicalizationError(f"unsupported type: {kind.__name__}")


def encode_canonical_object(value: dict[Any, Any], parts: list[str]) -> None:
    """Append the canonical JSON text of an object: members sorted by the UTF-16 code units of their keys."""
    keys = list(value)
    try:
        ascii_keys = "".join(keys).isascii()
    except TypeError:
        raise rfc8785.CanonicalizationError("object keys must be strings") from None
    if ascii_keys:
        keys.sort()
    else:  # code point order differs from UTF-16 order only outside the BMP
        keys.sort(key=lambda key: key.encode("utf-16-be", "surrogatepass"))
    separator = "{"
    for key in keys:
        parts.append(separator)
        parts.append(encode_json_string(key))
        parts.append(":")
        encode_canonical(value[key], parts)
        separator = ","
    parts.append("}" if keys else "{}")


def canonical_number(value: float) -> str:
    """Return a float as ECMAScript's Number.prototype.toString writes it (RFC 8785 §3.2.2.3)."""
    if value.is_integer():
        if abs(value) <= MAX_SAFE_INTEGER:
            return str(int(value))
        return rfc8785.dumps(value).decode("ascii")
    text = repr(value)
    # repr is the shortest round-trip form, like ECMAScript, except where it switches to exponent notation.
    if "e" in text or "n" in text:
        return rfc8785.dumps(value).decode("ascii")
    return text
