"""CEL cost limits: an expression whose shape or input makes it too expensive is refused before it runs."""

import time

import pytest

from policies import (
    CEL_TOO_EXPENSIVE,
    PolicyCostExceededError,
    PolicyTooExpensiveError,
    compile_expression,
    compile_policy,
    evaluate_policies,
)
from policies.cel import TOO_LONG, TOO_NESTED
from policies.cost import (
    MAX_COMPREHENSION_NESTING,
    MAX_EVALUATION_COST,
    MAX_EXPRESSION_LENGTH,
    estimate,
    is_size_independent,
)
from policies.syntax import parse

# Generous: a refusal takes well under a millisecond; evaluating these would take seconds to hours.
QUICKLY = 1.0


def nested_exists(depth: int, collection: str = "input.tags") -> str:
    """Return `collection.exists(v0, collection.exists(v1, ... v0 + v1 + ... == 'x'))`, `depth` deep."""
    names = [f"tag_{level}" for level in range(depth)]
    body = " + ".join(names) + " == 'no such concatenation of tags'"
    for name in reversed(names):
        body = f"{collection}.exists({name}, {body})"
    return body


def deny_policy(when: str):
    return compile_policy({"name": "costly", "stage": "pre", "effect": "deny", "when": when})


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def test_the_reported_nested_exists_is_refused_at_compile_with_its_position():
    # The case: nested `exists` over an input list, 10.6 s per evaluation before any limit.
    source = nested_exists(4)

    started = time.perf_counter()
    with pytest.raises(PolicyTooExpensiveError) as caught:
        compile_expression(source)

    assert time.perf_counter() - started < QUICKLY
    assert caught.value.code == CEL_TOO_EXPENSIVE
    assert caught.value.message == TOO_NESTED.format(depth=4, limit=MAX_COMPREHENSION_NESTING)
    innermost = source.index("exists", source.index("exists", source.index("exists", 12) + 1) + 1)
    assert (caught.value.line, caught.value.column) == (1, innermost + 1)


def test_a_nested_exists_that_compiles_is_refused_for_an_input_that_makes_it_too_expensive():
    policy = deny_policy(nested_exists(2))
    tags = [f"tag-{index}" for index in range(2_000)]  # 4 million body evaluations: about 16 s unbounded

    [result], seconds = timed(evaluate_policies, [policy], {"input": {"tags": tags}})

    assert seconds < QUICKLY
    assert (result.fired, result.effect) == (True, "deny")  # fail closed, like any evaluation failure
    assert f"{CEL_TOO_EXPENSIVE}: the estimated cost is" in result.error


def test_the_same_policy_runs_on_an_input_within_the_budget():
    [result] = evaluate_policies([deny_policy(nested_exists(2))], {"input": {"tags": ["a", "b", "c"]}})

    assert (result.fired, result.error) == (False, None)


@pytest.mark.parametrize("macro", ["all", "exists", "exists_one", "map", "filter"])
def test_every_comprehension_over_a_large_input_is_bounded(macro):
    body = "x == 'y'" if macro != "map" else "x + x"
    expression = compile_expression(f"input.items.{macro}(x, input.items.exists(y, {body})) == true")
    items = [str(index) for index in range(1_000)]

    started = time.perf_counter()
    with pytest.raises(PolicyCostExceededError, match=CEL_TOO_EXPENSIVE):
        expression.evaluate({"input": {"items": items}})

    assert time.perf_counter() - started < QUICKLY


def test_map_costs_the_square_of_its_size_because_the_evaluator_copies_its_result_each_step():
    small = parse("input.items.map(x, x).size() > 0")

    cost_100 = estimate(small, {"input": {"items": list(range(100))}}).cost
    cost_1000 = estimate(small, {"input": {"items": list(range(1_000))}}).cost

    assert cost_1000 > 50 * cost_100
    assert cost_1000 > MAX_EVALUATION_COST


def test_string_functions_in_comprehensions_count_the_length_of_the_strings():
    expression = compile_expression("input.items.exists(x, input.text.contains(x))")
    huge = "a" * 2_000_000

    with pytest.raises(PolicyCostExceededError):
        expression.evaluate({"input": {"items": ["b"] * 100, "text": huge}})
    assert expression.evaluate({"input": {"items": ["b"] * 100, "text": "abc"}}) is True


def test_concatenation_growth_in_a_comprehension_is_bounded():
    expression = compile_expression("input.items.map(x, input.text + input.text + x).size() > 0")

    with pytest.raises(PolicyCostExceededError):
        expression.evaluate({"input": {"items": ["b"] * 200, "text": "t" * 100_000}})


def test_a_regex_that_expands_when_compiled_is_refused_at_compile():
    with pytest.raises(PolicyTooExpensiveError, match="estimated cost"):
        compile_expression("input.text.matches('a{1000}{1000}')")


def test_a_backtracking_regex_is_linear_in_the_evaluator_and_allowed():
    expression = compile_expression("input.text.matches('^(a+)+$')")

    value, seconds = timed(expression.evaluate, {"input": {"text": "a" * 4_000 + "!"}})

    assert value is False
    assert seconds < QUICKLY


def test_an_expression_over_the_length_limit_is_refused_before_parsing():
    source = "input.amount > 1 || " * 300 + "true"

    with pytest.raises(PolicyTooExpensiveError) as caught:
        compile_expression(source)

    excess = len(source) - MAX_EXPRESSION_LENGTH
    assert caught.value.message == TOO_LONG.format(
        length=len(source), limit=MAX_EXPRESSION_LENGTH, excess=excess
    )
    assert (caught.value.line, caught.value.column) == (1, 1)


@pytest.mark.parametrize(
    "source",
    [
        "input.amount > 100000",
        "size(input.description) > 280",
        "!(output.queue in ['auto', 'home'])",
        "input.subject.startsWith('[auto-reply]') || input.subject.startsWith('Out of office')",
        "output.team == 'escalations' && input.tier == 'free'",
    ],
)
def test_the_example_policies_cost_the_same_whatever_the_input_so_evaluation_skips_the_estimate(source):
    assert is_size_independent(parse(source))


def test_a_comprehension_over_the_input_is_estimated_at_each_evaluation():
    assert not is_size_independent(parse("decision.policies.exists(p, p.name == 'x' && p.fired)"))


@pytest.mark.parametrize(
    "source",
    [
        "has(input.a) ? input.a[0] : {'k': [1, 2u, 3.5, -4]}.k.size() > 0",
        "r'\\d+' + \"x\" + '''multi\nline''' + b'bytes'.size().string()",
        "input.items.exists(i, i.tags.all(t, t in ['a', 'b'])) && !input.flag",
        "timestamp('2020-01-01T00:00:00Z').getFullYear() == 2020 && 0x10 > 1",
        "[1, 2, 3].filter(x, x % 2 == 1).map(x, x * 2)[0] >= 2 // a comment",
    ],
)
def test_the_shape_parser_reads_every_form_of_cel(source):
    compile_expression(source)  # cel accepts it, and so does the shape parser (no cost error)

    assert parse(source).kind in ("binary", "cond")
