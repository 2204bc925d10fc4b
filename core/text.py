"""Text the database cannot hold, and text that cannot be encoded: one check each, for every app."""

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
