"""Prompt templates render in Jinja's immutable sandbox: known escapes are refused and nothing leaks."""

import json

import pytest
from jinja2 import Environment, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SecurityError

from bundles.language.compiler import compile_bundle
from bundles.language.decisions import RENDER_FAILED, STATUS_ERROR
from bundles.language.execution import execute
from bundles.language.templating import (
    MAX_POWER_BITS,
    MAX_REPEATED_LENGTH,
    POWER_TOO_LARGE,
    REPETITION_TOO_LARGE,
    template_environment,
    template_free_names,
    template_variables,
)
from tests.bundles.language.test_execution import SMALL_CLAIM, RecordingModel, claims_triage_content

# What a successful escape would print: a class, a module's globals, a subclass list.
LEAK_MARKERS = ("<class", "__builtins__", "<module", "<function", "os.", "subprocess", "Popen")

ESCAPES = {
    # CVE-2016-10745: str.format reaches attributes the sandbox would refuse.
    "cve-2016-10745-format": '{{ "{0.__class__.__init__.__globals__}".format(input) }}',
    "cve-2016-10745-format-class": '{{ "{0.__class__}".format(input) }}',
    # CVE-2019-10906: the same through str.format_map.
    "cve-2019-10906-format-map": '{{ "{x.__class__.__init__.__globals__}".format_map({"x": input}) }}',
    "cve-2019-10906-format-map-global": '{{ "{x.__globals__}".format_map({"x": range}) }}',
    # Fixed in Jinja 3.1.6: |attr reaching str.format, and |attr on dunder attributes.
    "attr-filter-class": '{{ input|attr("__class__") }}',
    "attr-filter-mro": '{{ (input|attr("__class__"))|attr("__mro__") }}',
    "attr-format": '{{ ("{0.__class__.__init__.__globals__}"|attr("format"))(input) }}',
    "attr-format-map": '{{ ("{x.__globals__}"|attr("format_map"))({"x": range}) }}',
    "str-mro": '{{ "".__class__.__mro__ }}',
    "subclasses": '{{ "".__class__.__mro__[1].__subclasses__() }}',
    "cycler-globals": "{{ cycler.__init__.__globals__ }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "namespace-globals": "{{ namespace.__init__.__globals__ }}",
    "range-globals": "{{ range.__globals__ }}",
    "self-globals": "{{ self.__init__.__globals__ }}",
    "bound-method-self": "{{ input.items.__self__ }}",
    "format-filter": '{{ "%s"|format(input.__class__) }}',
    "mutate-input": '{% set _ = input.update({"claim_id": "C666"}) %}{{ input.claim_id }}',
    "pop-input": '{{ input.pop("claim_id") }}',
}


@pytest.mark.parametrize("payload", list(ESCAPES.values()), ids=list(ESCAPES))
def test_an_escape_payload_is_refused_when_rendering(payload):
    template = template_environment().from_string(payload)

    with pytest.raises((SecurityError, UndefinedError)):
        template.render(input=dict(SMALL_CLAIM))


@pytest.mark.parametrize("payload", list(ESCAPES.values()), ids=list(ESCAPES))
def test_an_escape_payload_in_a_bundle_is_an_error_decision_that_leaks_nothing(payload):
    content = claims_triage_content()
    content["templates/triage.yaml"]["prompt"] = payload
    model = RecordingModel()

    decision = execute(compile_bundle(content), "triage", dict(SMALL_CLAIM), model)

    assert decision.status == STATUS_ERROR
    assert decision.reason.startswith(RENDER_FAILED.format(template="triage", reason=""))
    assert decision.reason.split(": ", 1)[1].startswith(("SecurityError:", "UndefinedError:"))
    assert model.requests == []
    record = json.dumps(decision.to_dict())
    assert not [marker for marker in LEAK_MARKERS if marker in record]


def test_the_same_payload_does_leak_outside_the_sandbox():
    unsandboxed = Environment()  # noqa: S701  (deliberately unsafe: shows the payload is a real escape)
    leaked = unsandboxed.from_string(ESCAPES["cve-2016-10745-format-class"]).render(input={})

    assert leaked == "<class 'dict'>"


def test_the_input_cannot_be_mutated_by_a_template():
    claim = dict(SMALL_CLAIM)

    with pytest.raises(SecurityError):
        template_environment().from_string(ESCAPES["mutate-input"]).render(input=claim)

    assert claim == SMALL_CLAIM


def test_undefined_variables_are_errors_not_empty_strings():
    with pytest.raises(UndefinedError):
        template_environment().from_string("{{ input.missing }}").render(input={})


def test_autoescape_is_off_so_prompts_keep_their_characters():
    rendered = template_environment().from_string("{{ input.text }}").render(input={"text": "<a & 'b'>"})

    assert rendered == "<a & 'b'>"


def test_only_harmless_globals_are_offered():
    assert set(template_environment().globals) == {"range", "dict", "namespace"}


def test_a_huge_repetition_is_refused_before_allocating():
    with pytest.raises(SecurityError, match=REPETITION_TOO_LARGE.format(limit=MAX_REPEATED_LENGTH)):
        template_environment().from_string("{{ 'x' * 1000000000 }}").render()


def test_a_huge_power_is_refused_before_computing():
    with pytest.raises(SecurityError, match=POWER_TOO_LARGE.format(limit=MAX_POWER_BITS)):
        template_environment().from_string("{{ 9 ** 99999999 }}").render()


def test_small_arithmetic_still_works():
    assert (
        template_environment().from_string("{{ 'ab' * 2 }} {{ 2 ** 10 }} {{ 3 * 4 }}").render()
        == "abab 1024 12"
    )


def test_the_environment_is_shared():
    assert template_environment() is template_environment()


def test_template_variables_lists_the_input_attributes_read():
    source = (
        "Claim {{ input.claim_id }} for {{ input['amount'] }}"
        "{% if input.customer_email %}{{ input.description|upper }}{% endif %}{{ other.x }}"
    )

    assert template_variables(source) == {"claim_id", "amount", "customer_email", "description"}


def test_template_variables_reads_through_mapping_methods_not_their_names():
    source = (
        "{{ input.get('channel') }}{% for key, value in input.items() %}{{ key }}{% endfor %}"
        "{{ input.keys() }}"
    )

    assert template_variables(source) == {"channel"}


def test_template_variables_of_a_template_without_input_is_empty():
    assert template_variables("Hello {{ name }}") == set()


def test_template_variables_raises_a_syntax_error_with_its_line():
    with pytest.raises(TemplateSyntaxError) as caught:
        template_variables("line one {{ input.a }}\n{% if %}")

    assert caught.value.lineno == 2


def test_template_free_names_lists_the_top_level_names_read():
    source = "{{ input.a }} {{ secret }} {% set b = 1 %}{{ b }} {{ range(2)|list }}"

    assert template_free_names(source) == {"input", "secret"}
