"""The rules of a policy file, declared once: its keys, stages, effects and what each stage may read.

The policy compiler (`policies.evaluation`) enforces them and the bundle language derives its JSON Schema
and its positioned checks of policy files from them, so the two can never disagree.
"""

from __future__ import annotations

from policies.cel import ALLOWED_VARIABLES

STAGES = ("pre", "post")
EFFECTS = ("deny", "redact", "warn")
REDACT = "redact"
# Effects that fire on a condition and remove nothing: they need `when`.
CONDITIONAL_EFFECTS = tuple(effect for effect in EFFECTS if effect != REDACT)
# What a redaction removes: fields named directly or by classification. Only redact policies have them.
REDACT_TARGETS = ("fields", "classifications")
# Every key of a policy file, in the order it is documented.
POLICY_KEYS = ("name", "description", "stage", "effect", "when", "message", *REDACT_TARGETS)
REQUIRED_KEYS = ("name", "stage", "effect")
# The variable each stage's redactions apply to.
STAGE_TARGETS = {"pre": "input", "post": "output"}
# A pre policy runs before the model: there is no output yet.
STAGE_VARIABLES = {
    "pre": ALLOWED_VARIABLES - {"output"},
    "post": ALLOWED_VARIABLES,
}


def stage_variables(stage: object) -> frozenset[str]:
    """Return the variables a policy of `stage` may read (every variable for an unknown stage)."""
    return STAGE_VARIABLES[stage] if stage in STAGES else ALLOWED_VARIABLES  # type: ignore[index]
