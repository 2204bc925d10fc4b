"""Text the database cannot hold, and text that cannot be encoded: one check each, for every app."""

import unicodedata

from core.errors import TextTooLong

NUL_CHARACTER = "a NUL (\\u0000) character"
LONE_SURROGATE = "an unpaired surrogate (not Unicode text)"


def unstorable(text: str) -> str | None:
    """Return what keeps `text` out of PostgreSQL (a NUL character, an unpaired surrogate), or None."""
    if "\x00" in text:
        return NUL_CHARACTER
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE
    return None


def printable(value):
    """Return `value` with lone surrogates escaped (as \\udxxx), so that it always encodes as UTF-8 JSON.

    Error messages echo what the client sent (a file name, a choice); a JSON string may carry an unpaired
    surrogate escape that no UTF-8 encoder accepts, which would turn a 400 into a 500 while rendering it.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {printable(key): printable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [printable(item) for item in value]
    return value


# Characters that reorder or hide text (Trojan Source, CVE-2021-42574): bidirectional embeddings, overrides
# and isolates, directional marks, zero-width characters and the BOM.
INVISIBLE_OR_BIDI = frozenset(
    [chr(code) for code in range(0x202A, 0x202F)]
    + [chr(code) for code in range(0x2066, 0x206A)]
    + ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u061c"]
)
BIDI_OR_INVISIBLE = "a bidirectional-control or invisible character ({codepoint})"
MIXED_SCRIPTS = "letters of more than one script ({scripts}), which can pass for another name"
CONTROL_CHARACTER = "a control character ({codepoint})"
MAX_REASON_LENGTH = 2000
TOO_LONG = "at most {limit} characters (got {length})"


def script_of(character: str) -> str:
    """Return the script of a letter as the first word of its Unicode name (LATIN, CYRILLIC, GREEK ...)."""
    name = unicodedata.name(character, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def unsafe_name(text: str) -> str | None:
    """Return why `text` may not name a thing people pick by eye (a key, an endpoint, a token), or None.

    Refused: bidirectional controls and invisible characters, other control characters, and letters of
    several scripts mixed (a Cyrillic a, U+0430, inside a Latin name).
    """
    for character in text:
        if character in INVISIBLE_OR_BIDI or unicodedata.category(character) == "Cf":
            return BIDI_OR_INVISIBLE.format(codepoint=f"U+{ord(character):04X}")
        if unicodedata.category(character) == "Cc":
            return CONTROL_CHARACTER.format(codepoint=f"U+{ord(character):04X}")
    scripts = sorted({script_of(character) for character in text if character.isalpha()})
    if len(scripts) > 1:
        return MIXED_SCRIPTS.format(scripts=", ".join(scripts))
    return None


def require_within(field: str, text: str, limit: int = MAX_REASON_LENGTH) -> str:
    """Return `text`, or raise TextTooLong naming `field` when it is longer than `limit` characters."""
    if len(text) > limit:
        reason = TOO_LONG.format(limit=limit, length=len(text))
        raise TextTooLong(
            f"{field}: {reason}.", details=[{"field": field, "code": "too_long", "message": reason}]
        )
    return text
