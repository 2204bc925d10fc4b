"""Render limits: a template that would build a huge prompt or loop without end is stopped quickly."""

import time

import pytest

from bundles.language.compiler import compile_bundle
from bundles.language.decisions import PROMPT_TOO_LARGE, STATUS_DENIED, STATUS_ERROR, ErrorKind
from bundles.language.execution import execute
from bundles.language.limits import (
    MAX_FORMAT_WIDTH,
    MAX_LOOP_ITERATIONS,
    MAX_PROMPT_CHARS,
    MAX_RENDER_WORK,
    TOO_MANY_ITERATIONS,
    TOO_MUCH_WORK,
    PromptTooLargeError,
)
from bundles.language.suites import run_suites
from bundles.language.templating import template_environment
from tests.bundles.language.test_execution import SMALL_CLAIM, RecordingModel, claims_triage_content

# Generous: each refusal takes milliseconds; each payload unbounded takes seconds and gigabytes.
QUICKLY = 1.0
BIG = 200_000_000

PAYLOADS = {
    "percent-width": f"{{{{ '%{BIG}s' % 'x' }}}}",
    "percent-precision": f"{{{{ '%.{BIG}f' % 1.5 }}}}",
    "percent-star-width": f"{{{{ '%*s' % ({BIG}, 'x') }}}}",
    "str-format-width": f"{{{{ '{{:>{BIG}}}'.format('x') }}}}",
    "str-format-nested-width": f"{{{{ '{{:>{{w}}}}'.format('x', w={BIG}) }}}}",
    "str-format-map-width": f"{{{{ '{{x:>{BIG}}}'.format_map({{'x': 1}}) }}}}",
    "attr-format-width": f"{{{{ ('{{:>{BIG}}}'|attr('format'))('x') }}}}",
    "format-filter": f"{{{{ '%{BIG}s'|format('x') }}}}",
    "center": f"{{{{ 'x'.center({BIG}) }}}}",
    "center-filter": f"{{{{ 'x'|center({BIG}) }}}}",
    "ljust": f"{{{{ 'x'.ljust({BIG}) }}}}",
    "rjust": f"{{{{ 'x'.rjust({BIG}) }}}}",
    "zfill": f"{{{{ '1'.zfill({BIG}) }}}}",
    "expandtabs": "{{ ('\t' * 90000).expandtabs(1000) }}",
    "indent-filter": "{{ ('x\n' * 50000)|indent(1000) }}",
    "tojson-indent": f"{{{{ [1, 2]|tojson(indent={BIG}) }}}}",
    "replace-chain": (
        "{{ ('x' * 1000).replace('x', 'x' * 10).replace('x', 'x' * 10).replace('x', 'x' * 10) }}"
    ),
    "replace-filter-chain": (
        "{{ ('x' * 1000)|replace('x', 'x' * 10)|replace('x', 'x' * 10)|replace('x', 'x' * 10) }}"
    ),
    "tilde-doubling": (
        "{% set ns = namespace(s='x' * 100000) %}"
        "{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "plus-doubling": (
        "{% set ns = namespace(s='x' * 100000) %}"
        "{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "join-big-range": "{{ range(100000)|join(',') }}",
    "join-in-a-loop": "{% for i in range(5000) %}{{ (range(99999)|join)|length }}{% endfor %}",
    "huge-range": "{{ range(10 ** 9)|list|length }}",
    "nested-empty-loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "macro-fan-out": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    ),
    "macro-deep-recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "recursive-loop": "{% for x in range(3) recursive %}{{ loop(range(3)) }}{% endfor %}",
    "namespace-dict-growth": (
        "{% set ns = namespace(d={}) %}"
        "{% for i in range(100000) %}{% set ns.d = dict(ns.d, **{'k' ~ i: i}) %}{% endfor %}"
    ),
    "macro-output-buffer": (
        "{% macro m() %}{% for i in range(10000) %}{{ 'x' * 100000 }}{% endfor %}{% endmacro %}"
        "{{ m()|length }}"
    ),
    "set-block-buffer": (
        "{% set s %}{% for i in range(10000) %}{{ 'x' * 100000 }}{% endfor %}{% endset %}{{ s|length }}"
    ),
    "membership-scan-in-a-loop": (
        "{% set l = range(99999)|list %}{% for i in range(10000) %}{{ -1 in l }}{% endfor %}"
    ),
    "rendered-output": "{% for i in range(10000) %}{{ 'x' * 100000 }}{% endfor %}",
    "batch-fill": f"{{{{ [1]|batch({BIG}, 'x')|list|length }}}}",
    "wordwrap-wrapstring": "{{ ('x' * 50000)|wordwrap(1, wrapstring='y' * 1000) }}",
}


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_a_costly_template_is_refused_quickly_with_prompt_too_large(payload):
    template = template_environment().from_string(payload)

    started = time.perf_counter()
    with pytest.raises(PromptTooLargeError) as caught:
        template.render(input=dict(SMALL_CLAIM))

    assert time.perf_counter() - started < QUICKLY
    assert str(caught.value).startswith("prompt_too_large: ")


def test_nested_empty_loops_are_stopped_by_their_iteration_count():
    template = template_environment().from_string(PAYLOADS["nested-empty-loops"])

    with pytest.raises(PromptTooLargeError, match=TOO_MANY_ITERATIONS.format(limit=MAX_LOOP_ITERATIONS)):
        template.render()


def test_a_loop_of_cheap_lookups_with_little_output_is_stopped_by_its_work():
    template = template_environment().from_string(PAYLOADS["membership-scan-in-a-loop"])

    with pytest.raises(PromptTooLargeError, match=TOO_MUCH_WORK.format(limit=MAX_RENDER_WORK)):
        template.render()


def test_a_width_at_the_limit_is_allowed_and_one_more_is_refused():
    environment = template_environment()

    rendered = environment.from_string(f"{{{{ '%{MAX_FORMAT_WIDTH}s' % 'x' }}}}").render()

    assert len(rendered) == MAX_FORMAT_WIDTH
    with pytest.raises(PromptTooLargeError, match=f"{MAX_FORMAT_WIDTH + 1} is over the limit"):
        environment.from_string(f"{{{{ '{{:>{MAX_FORMAT_WIDTH + 1}}}'.format('x') }}}}").render()


LEGITIMATE = {
    "loop-with-loop-variable": (
        "{% for t in input.tags %}{{ loop.index }}. {{ t|upper }}{{ ', ' if not loop.last }}{% endfor %}",
        "1. A, 2. B",
    ),
    "small-formatting": (
        "{{ '%5.2f' % input.amount }}|{{ '{:>6}'.format('x') }}|{{ 'ab'|center(6) }}|{{ '7'.zfill(3) }}",
        "12.50|     x|  ab  |007",
    ),
    "concatenation-and-membership": (
        "{{ 'a' ~ 'b' }} {{ 'a' in 'abc' }} {{ 'z' not in input.tags }}",
        "ab True True",
    ),
    "join-replace-indent": ("{{ input.tags|join(', ')|replace('a', 'A')|indent(2, true) }}", "  A, b"),
    "macro-and-set-block": (
        "{% macro tag(t) %}[{{ t }}]{% endmacro %}{% set s %}{{ tag('x') }}{% endset %}{{ s }}{{ tag('y') }}",
        "[x][y]",
    ),
    "recursive-loop": (
        "{% for n in input.tree recursive %}{{ n.name }}"
        "{% if n.kids is defined %}({{ loop(n.kids) }}){% endif %}{% endfor %}",
        "a(b)",
    ),
}


@pytest.mark.parametrize("source, expected", list(LEGITIMATE.values()), ids=list(LEGITIMATE))
def test_legitimate_templates_render_as_before(source, expected):
    variables = {"tags": ["a", "b"], "amount": 12.5, "tree": [{"name": "a", "kids": [{"name": "b"}]}]}

    assert template_environment().from_string(source).render(input=variables) == expected


def costly_bundle(prompt: str = PAYLOADS["percent-width"]):
    content = claims_triage_content()
    content["templates/triage.yaml"]["prompt"] = prompt
    return compile_bundle(content)


def test_an_execution_whose_template_passes_a_limit_is_an_error_of_kind_prompt_too_large():
    model = RecordingModel()

    decision = execute(costly_bundle(), "triage", dict(SMALL_CLAIM), model)

    assert decision.status == STATUS_ERROR
    assert decision.error_kind is ErrorKind.PROMPT_TOO_LARGE
    assert decision.reason.startswith(PROMPT_TOO_LARGE.format(template="triage", reason=""))
    assert ErrorKind.of_reason(decision.reason) is ErrorKind.PROMPT_TOO_LARGE
    assert model.requests == []


def test_system_and_prompt_share_the_cap():
    half = "x" * (MAX_PROMPT_CHARS // 2 + 1)
    content = claims_triage_content()
    content["templates/triage.yaml"]["system"] = half
    content["templates/triage.yaml"]["prompt"] = "{{ '" + half + "' }}"

    decision = execute(compile_bundle(content), "triage", dict(SMALL_CLAIM), RecordingModel())

    assert decision.error_kind is ErrorKind.PROMPT_TOO_LARGE


def test_a_suite_whose_case_renders_a_prompt_over_the_cap_fails_its_gate():
    content = claims_triage_content()
    prompt = "{% for i in range(10000) %}{{ input.description * 1000 }}{% endfor %}"
    content["templates/triage.yaml"]["prompt"] = prompt
    content["suites/golden.yaml"] = {
        "name": "golden",
        "pipeline": "triage",
        "cases": [
            {
                "name": "expects-the-error",
                "input": dict(SMALL_CLAIM),
                "model_output": '{"queue": "auto"}',
                "expect": {"status": "error"},
            }
        ],
    }

    report = run_suites(compile_bundle(content))

    [case] = report.suites[0].cases
    assert not report.passed
    assert case.status == STATUS_ERROR
    assert [failure.split(":", 1)[0] for failure in case.failures] == ["prompt_too_large"]


CHEAP_ASSERTION = "decision.policies.exists(p, input.description.contains(p.name))"


def test_a_suite_cel_assertion_over_a_cost_limit_fails_naming_cel_too_expensive():
    content = claims_triage_content()
    case = {"name": "huge", "input": {**SMALL_CLAIM, "amount": 500000}, "expect": {"status": STATUS_DENIED}}
    content["suites/golden.yaml"] = {"name": "golden", "pipeline": "triage", "cases": [case]}
    case["expect"]["cel"] = CHEAP_ASSERTION

    [cheap] = run_suites(compile_bundle(content)).suites[0].cases
    case["expect"]["cel"] = (
        "decision.policies.exists(p, decision.policies.exists(q, decision.policies.exists(r, "
        "input.description.contains(p.name + q.name + r.name))))"
    )
    [costly] = run_suites(compile_bundle(content)).suites[0].cases

    assert cheap.failures == [f"cel: {CHEAP_ASSERTION!r} is false"]  # it ran
    assert len(costly.failures) == 1
    assert "is refused: cel_too_expensive: the estimated cost" in costly.failures[0]
