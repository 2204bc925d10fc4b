"""The limits every evaluation of a bundle runs under, in one place with their values and why.

Templates (enforced by the sandbox while rendering, `bundles.language.budget`):
- MAX_PROMPT_CHARS: the rendered system and prompt of one execution together, and any single string, list
  or mapping a template builds on the way (about 64k tokens: more than any model this product targets reads).
- MAX_LOOP_ITERATIONS: `for` loop passes, macro calls and recursive `loop()` calls of one render, nested
  loops included (an empty loop body still costs its iterations).
- MAX_RENDER_WORK: characters and items that filters, method calls, operators and loop bodies read or
  produce during one render: what bounds the time of a render whose output stays small.
- MAX_FORMAT_WIDTH: widths and precisions of `%` formatting, `str.format`, the `format` filter, padding
  (`center`, `ljust`, `rjust`, `zfill`, `indent`, `tojson(indent)`) and `expandtabs` tab sizes.

CEL (checked when a policy is compiled and before each evaluation, `policies.cost`): MAX_EXPRESSION_LENGTH,
MAX_COMPREHENSION_NESTING, MAX_EVALUATION_COST, NOMINAL_SIZE.

A template over a limit is refused with `prompt_too_large`; a CEL expression with `cel_too_expensive`.
"""

from __future__ import annotations

from jinja2.sandbox import SecurityError

from bundles.language.errors import PROMPT_TOO_LARGE
from policies.cost import MAX_COMPREHENSION_NESTING, MAX_EVALUATION_COST, MAX_EXPRESSION_LENGTH, NOMINAL_SIZE

__all__ = [
    "MAX_COMPREHENSION_NESTING",
    "MAX_EVALUATION_COST",
    "MAX_EXPRESSION_LENGTH",
    "MAX_FORMAT_WIDTH",
    "MAX_LOOP_ITERATIONS",
    "MAX_PROMPT_CHARS",
    "MAX_RANGE_ITEMS",
    "MAX_RENDER_WORK",
    "NOMINAL_SIZE",
    "PROMPT_TOO_LARGE",
    "PromptTooLargeError",
]

MAX_PROMPT_CHARS = 256_000
MAX_LOOP_ITERATIONS = 10_000
MAX_RENDER_WORK = 4_000_000
MAX_FORMAT_WIDTH = 1_000
# `range()` in a template (the sandbox's own MAX_RANGE, refused with our code rather than OverflowError).
MAX_RANGE_ITEMS = 100_000


PROMPT_OVER_CAP = "the rendered prompt would be {size} characters; the limit is {limit}"
VALUE_OVER_CAP = "{what} would hold {size} characters or items; the limit is {limit}"
TOO_MANY_ITERATIONS = "more than {limit} loop iterations and macro calls in one render"
TOO_MUCH_WORK = "more than {limit} characters and items processed in one render"
WIDTH_TOO_LARGE = "{what} {width} is over the limit of {limit}"
DYNAMIC_WIDTH = "{what} taken from an argument (`*`) is not allowed"
RANGE_TOO_LARGE = "range() of {size} items; the limit is {limit}"
RECURSION_TOO_DEEP = "macros or recursive loops nest too deeply"
SOURCE_OVER_CAP = "the template text is {size} characters; the limit of a rendered prompt is {limit}"


class PromptTooLargeError(SecurityError):
    """A template would render, build or process more than a limit allows; it was stopped before that."""

    code = PROMPT_TOO_LARGE

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"
