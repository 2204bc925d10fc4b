"""Check templates/*.yaml: Jinja syntax, and that a template reads only fields of its pipelines' inputs."""

from __future__ import annotations

import re
from typing import Any

from jinja2 import TemplateSyntaxError

from bundles.language.checks.context import BundleCheck, Definition, mapping
from bundles.language.documents import source_position, value_position
from bundles.language.errors import JINJA_SYNTAX, PROMPT_TOO_LARGE, TEMPLATE_VARIABLE_UNDEFINED
from bundles.language.limits import MAX_PROMPT_CHARS, SOURCE_OVER_CAP
from bundles.language.schemas import TEMPLATE
from bundles.language.templating import template_variables

TEXT_KEYS = ("system", "prompt")
MESSAGE_JINJA_SYNTAX = "Jinja syntax error: {reason}"
MESSAGE_TEMPLATE_VARIABLE = (
    "the template reads input.{field}, but {entity} (input of pipeline '{pipeline}') has no field '{field}'"
)


def check_templates(bundle: BundleCheck) -> None:
    """Report Jinja syntax errors in templates, and template text that alone is over the prompt cap."""
    for parsed in bundle.yaml_files(TEMPLATE):
        length = 0
        for key in TEXT_KEYS:
            source = parsed.value.get(key)
            if not isinstance(source, str):
                continue
            length += len(source)
            if length > MAX_PROMPT_CHARS:  # its text renders at least once: known now, not at render time
                message = SOURCE_OVER_CAP.format(size=length, limit=MAX_PROMPT_CHARS)
                bundle.report(
                    PROMPT_TOO_LARGE,
                    parsed,
                    (key,),
                    message,
                    position=value_position(parsed, (key,), None, None),
                )
            try:
                template_variables(source)
            except TemplateSyntaxError as exc:
                position = value_position(parsed, (key,), exc.lineno, None)
                message = MESSAGE_JINJA_SYNTAX.format(reason=exc.message)
                bundle.report(JINJA_SYNTAX, parsed, (key,), message, position=position)


def check_template_fields(
    bundle: BundleCheck, template: Definition, entity: Definition, pipeline: Any
) -> None:
    """Report template reads of `input.x` where x is not a field of the pipeline's input entity."""
    fields = mapping(entity.body.get("fields"))
    for key in TEXT_KEYS:
        source = template.body.get(key)
        if not isinstance(source, str):
            continue
        try:
            used = template_variables(source)
        except TemplateSyntaxError:
            continue  # reported by check_templates
        for name in sorted(used - set(fields)):
            needle = re.compile(rf"\binput\s*(?:\.\s*{re.escape(name)}\b|\[\s*['\"]{re.escape(name)}['\"])")
            found = source_position(source, needle)
            position = value_position(template.file, (key,), *(found or (None, None)))
            message = MESSAGE_TEMPLATE_VARIABLE.format(field=name, entity=entity.name, pipeline=pipeline)
            bundle.report(TEMPLATE_VARIABLE_UNDEFINED, template.file, (key,), message, position=position)
