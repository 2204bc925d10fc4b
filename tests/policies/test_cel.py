"""CEL expressions: compiled once, variables found statically, syntax errors located by line and column."""

import pytest

from policies import (
    ALLOWED_VARIABLES,
    CompiledExpression,
    PolicyEvaluationError,
    PolicySyntaxError,
    compile_expression,
)
from policies.cel import NOT_A_STRING


def test_allowed_variables_are_the_five_documented_names():
    assert {"input", "output", "pipeline", "caller", "bundle"} == ALLOWED_VARIABLES


def test_a_compiled_expression_keeps_its_source_and_evaluates_many_times():
    expression = compile_expression("input.amount > 100000")

    assert isinstance(expression, CompiledExpression)
    assert expression.source == "input.amount > 100000"
    assert expression.evaluate({"input": {"amount": 500000}}) is True
    assert expression.evaluate({"input": {"amount": 5}}) is False


def test_variables_lists_the_top_level_identifiers_read():
    expression = compile_expression("caller.role == 'admin' && bundle.name == pipeline && input.a < output.b")

    assert expression.variables == {"caller", "bundle", "pipeline", "input", "output"}


def test_variables_ignore_field_names_and_string_literals():
    expression = compile_expression("input.customer.email == 'output.x' && has(input.flag)")

    assert expression.variables == {"input"}


def test_variables_leave_out_names_bound_by_macros():
    expression = compile_expression(
        "input.items.all(item, item > 0) && input.tags.exists(t, t == 'x') "
        "&& input.items.map(n, n * 2).size() > 0 && input.pairs.all(k, v, k == v)"
    )

    assert expression.variables == {"input"}


def test_variables_keep_a_real_variable_that_only_looks_like_a_binder():
    expression = compile_expression("input.items.all(x, x > caller.minimum)")

    assert expression.variables == {"input", "caller"}


def test_a_syntax_error_carries_line_and_column():
    with pytest.raises(PolicySyntaxError) as caught:
        compile_expression("input.amount >")

    assert (caught.value.line, caught.value.column) == (1, 15)
    assert caught.value.message.startswith("Syntax error: mismatched input '<EOF>'")
    assert str(caught.value).startswith("1:15: Syntax error")


def test_a_syntax_error_on_a_later_line_reports_that_line():
    with pytest.raises(PolicySyntaxError) as caught:
        compile_expression("input.amount > 1 &&\n  input.description ==")

    assert (caught.value.line, caught.value.column) == (2, 23)


def test_an_unknown_token_is_located():
    with pytest.raises(PolicySyntaxError) as caught:
        compile_expression("input.a &&& input.b")

    assert (caught.value.line, caught.value.column) == (1, 11)
    assert caught.value.message.startswith("Syntax error: token recognition error")


def test_an_empty_expression_is_a_syntax_error_at_the_start():
    with pytest.raises(PolicySyntaxError) as caught:
        compile_expression("")

    assert (caught.value.line, caught.value.column) == (1, 1)


def test_a_source_that_is_not_a_string_is_refused_without_position():
    with pytest.raises(PolicySyntaxError) as caught:
        compile_expression(42)

    assert caught.value.message == NOT_A_STRING.format(type_name="int")
    assert (caught.value.line, caught.value.column) == (None, None)


def test_a_syntax_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        compile_expression("(")


def test_evaluating_a_missing_key_raises_an_evaluation_error_naming_the_key():
    with pytest.raises(PolicyEvaluationError, match=r"^no such key: amount$"):
        compile_expression("input.amount > 1").evaluate({"input": {}})


def test_evaluating_an_undefined_variable_raises_an_evaluation_error():
    with pytest.raises(
        PolicyEvaluationError, match=r"^RuntimeError: Undefined variable or function: 'output'"
    ):
        compile_expression("output.queue == 'auto'").evaluate({"input": {}})


def test_evaluating_mixed_types_raises_an_evaluation_error():
    with pytest.raises(PolicyEvaluationError, match=r"^TypeError: No such overload"):
        compile_expression("input.amount + 'x' == 'y'").evaluate({"input": {"amount": 1}})


def test_ints_and_doubles_compare_by_value():
    expression = compile_expression("input.amount > 100000")

    assert expression.evaluate({"input": {"amount": 100000.5}}) is True
    assert expression.evaluate({"input": {"amount": 100000}}) is False
