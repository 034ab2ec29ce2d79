"""The built-in plugins called directly, in this process: word_count, calculator and summarize."""

from __future__ import annotations

import pytest

from chat_services.plugin.api import PluginArgumentError, PluginOutput
from chat_services.plugin.builtins import (
    CALCULATOR,
    EXPONENT_LIMIT,
    EXPRESSION_MAX_CHARS,
    SUMMARIZE,
    WORD_COUNT,
    calculate,
    count_words,
    summarize,
)


def _refused(run: object, arguments: dict[str, str]) -> PluginArgumentError:
    with pytest.raises(PluginArgumentError) as raised:
        run(arguments)  # type: ignore[operator]
    return raised.value


def test_the_specs_name_their_functions_and_arguments() -> None:
    assert (WORD_COUNT.name, WORD_COUNT.run, WORD_COUNT.argument_names) == (
        "word_count",
        count_words,
        ("text",),
    )
    assert (CALCULATOR.name, CALCULATOR.run, CALCULATOR.argument_names) == (
        "calculator",
        calculate,
        ("expression",),
    )
    assert (SUMMARIZE.name, SUMMARIZE.run, SUMMARIZE.argument_names) == (
        "summarize",
        summarize,
        ("text", "max_sentences"),
    )


# ---------------------------------------------------------------- word_count


@pytest.mark.parametrize(
    ("text", "output", "data"),
    [
        ("one", "1 word, 3 characters, 1 line", ("1", "3", "1")),
        ("Hello, world!\nIt's here.", "4 words, 24 characters, 2 lines", ("4", "24", "2")),
        ("don\u2019t  stop", "2 words, 11 characters, 1 line", ("2", "11", "1")),
        ("a\n\nb\n", "2 words, 5 characters, 3 lines", ("2", "5", "3")),
        ("   x   ", "1 word, 7 characters, 1 line", ("1", "7", "1")),
        ("!!! ???", "0 words, 7 characters, 1 line", ("0", "7", "1")),
        ("caf\u00e9 na\u00efve \u65e5\u672c", "3 words, 13 characters, 1 line", ("3", "13", "1")),
    ],
)
def test_word_count_counts_words_characters_and_lines(
    text: str, output: str, data: tuple[str, str, str]
) -> None:
    counted = count_words({"text": text})
    assert counted == PluginOutput(output, {"words": data[0], "characters": data[1], "lines": data[2]})


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_word_count_requires_some_text(text: str | None) -> None:
    error = _refused(count_words, {} if text is None else {"text": text})
    assert error.argument == "text" and "'text' is required" in str(error)


# ---------------------------------------------------------------- calculator


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("1 + 2", "3"),
        ("6 * (3 + 4)", "42"),
        ("7 / 2", "3.5"),
        ("8 / 2", "4"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("2 ** 10", "1024"),
        ("2 ** -1", "0.5"),
        ("2 ** 0.5", "1.4142135623730951"),
        ("-(-3)", "3"),
        ("+4", "4"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("2**53 + 1", "9007199254740993"),
        ("10 ** 20", "100000000000000000000"),
        ("1_000 + 0x10", "1016"),
        ("1 + 1\n", "2"),
    ],
)
def test_calculator_evaluates_arithmetic(expression: str, result: str) -> None:
    evaluated = calculate({"expression": expression})
    assert evaluated.data == {"result": result}
    assert evaluated.output == f"{expression.strip()} = {result}"


def test_an_exponent_at_the_limit_is_evaluated() -> None:
    evaluated = calculate({"expression": f"1 ** {EXPONENT_LIMIT} + 1.5 ** -{EXPONENT_LIMIT}"})
    assert evaluated.data == {"result": "1"}


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",  # a call
        "abs(-1)",
        "open('/etc/passwd')",
        "x",  # a name
        "True + 1",  # booleans are not numbers here
        "(1).__class__",  # attribute access
        "().__class__.__bases__[0].__subclasses__()",
        "[1, 2]",
        "1, 2",
        "'a' * 3",
        "1j",  # complex literals
        "1 < 2",
        "1 if 1 else 2",
        "lambda: 1",
        "~1",
        "1 << 3",
        "1 & 3",
        "None",
        "...",
    ],
)
def test_calculator_refuses_everything_but_numbers_and_operators(expression: str) -> None:
    error = _refused(calculate, {"expression": expression})
    assert error.argument == "expression"
    assert "only numbers, + - * / // % ** and parentheses are allowed" in str(error)


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("1/0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("1.5 / (2 - 2)", "division by zero"),
        (f"9 ** {EXPONENT_LIMIT + 1}", f"exponents are limited to {EXPONENT_LIMIT}"),
        ("9 ** 99999999999", "exponents are limited"),
        (f"2 ** -{EXPONENT_LIMIT + 1}", "exponents are limited"),
        ("2 ** 2 ** 20", "exponents are limited"),  # right-associative: 2 ** (2 ** 20)
        ("2.0 ** 5000", "the result is too large"),
        ("10 ** 400 * 1.0", "the result is too large"),
        ("(1 + 2", "not valid arithmetic"),
        ("1 +", "not valid arithmetic"),
        ("1 = 1", "not valid arithmetic"),
        ("import os", "not valid arithmetic"),
        ("1" * (EXPRESSION_MAX_CHARS + 1), f"longer than {EXPRESSION_MAX_CHARS} characters"),
    ],
)
def test_calculator_argument_errors(expression: str, text: str) -> None:
    error = _refused(calculate, {"expression": expression})
    assert error.argument == "expression"
    assert text in str(error)
    assert isinstance(error, ValueError), "PluginArgumentError is a ValueError"


def test_the_expression_length_limit_is_inclusive() -> None:
    expression = "1 +" + " " * (EXPRESSION_MAX_CHARS - 4) + "1"
    assert len(expression) == EXPRESSION_MAX_CHARS
    assert calculate({"expression": expression}).data == {"result": "2"}
    error = _refused(calculate, {"expression": expression + " "})
    assert "longer than" in str(error)


@pytest.mark.parametrize("expression", [None, "", "  "])
def test_calculator_requires_an_expression(expression: str | None) -> None:
    error = _refused(calculate, {} if expression is None else {"expression": expression})
    assert error.argument == "expression" and "required" in str(error)


def test_a_result_too_long_to_print_is_an_argument_error() -> None:
    error = _refused(calculate, {"expression": "10**5000"})
    assert error.argument == "expression"


@pytest.mark.parametrize("expression", ["(-1) ** 0.5", "(-8) ** (1/3) // 1", "(-1) ** 0.5 % 2"])
def test_a_non_real_result_is_an_argument_error(expression: str) -> None:
    error = _refused(calculate, {"expression": expression})
    assert error.argument == "expression"


@pytest.mark.parametrize("expression", [" 1 + 1", "\t1 + 1"])
def test_leading_whitespace_is_allowed(expression: str) -> None:
    assert calculate({"expression": expression}) == PluginOutput("1 + 1 = 2", {"result": "2"})


# ---------------------------------------------------------------- summarize

TEXT = (
    "Retries back off after failures. Retries use jitter between attempts. Bread is tasty! "
    "Retries are bounded by deadlines and retries stop."
)


def test_summarize_picks_the_most_representative_sentences_in_their_order() -> None:
    two = summarize({"text": TEXT, "max_sentences": "2"})
    assert two == PluginOutput(
        "Retries back off after failures. Retries are bounded by deadlines and retries stop.",
        {"sentences": "2", "of_sentences": "4"},
    )
    three = summarize({"text": TEXT})
    assert three.data == {"sentences": "3", "of_sentences": "4"}
    assert "Bread" not in three.output
    assert summarize({"text": TEXT, "max_sentences": ""}) == three, "empty means the default of 3"
    assert summarize({"text": TEXT}) == three, "deterministic"


def test_summarize_keeps_short_texts_whole_and_normalises_whitespace() -> None:
    short = summarize({"text": "One.   Two\n words   here?", "max_sentences": "10"})
    assert short == PluginOutput("One. Two words here?", {"sentences": "2", "of_sentences": "2"})
    single = summarize({"text": "no punctuation at all"})
    assert single == PluginOutput("no punctuation at all", {"sentences": "1", "of_sentences": "1"})


@pytest.mark.parametrize(
    ("arguments", "argument", "text"),
    [
        ({}, "text", "'text' is required"),
        ({"text": " \n "}, "text", "'text' is required"),
        ({"text": "A.", "max_sentences": "three"}, "max_sentences", "whole number, got 'three'"),
        ({"text": "A.", "max_sentences": "1.5"}, "max_sentences", "whole number"),
        ({"text": "A.", "max_sentences": "0"}, "max_sentences", "at least 1"),
        ({"text": "A.", "max_sentences": "-2"}, "max_sentences", "at least 1"),
    ],
)
def test_summarize_argument_errors(arguments: dict[str, str], argument: str, text: str) -> None:
    error = _refused(summarize, arguments)
    assert error.argument == argument and text in str(error)
