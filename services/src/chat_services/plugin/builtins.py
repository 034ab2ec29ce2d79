"""The built-in plugins: word count, a calculator and an extractive summariser."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Mapping

from chat_services.plugin.api import PluginArgumentError, PluginOutput, PluginSpec

_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")  # apostrophes inside words: don't, it\u2019s


def _required(arguments: Mapping[str, str], name: str) -> str:
    value = arguments.get(name, "")
    if not value.strip():
        raise PluginArgumentError(f"argument {name!r} is required", argument=name)
    return value


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def count_words(arguments: Mapping[str, str]) -> PluginOutput:
    text = _required(arguments, "text")
    words = len(_WORD.findall(text))
    lines = len(text.splitlines()) or 1
    return PluginOutput(
        output=f"{_count(words, 'word')}, {_count(len(text), 'character')}, {_count(lines, 'line')}",
        data={"words": str(words), "characters": str(len(text)), "lines": str(lines)},
    )


WORD_COUNT = PluginSpec(
    name="word_count",
    display_name="Word count",
    description="Counts the words, characters and lines of a text.",
    version="1.0.0",
    run=count_words,
    argument_names=("text",),
)

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
EXPRESSION_MAX_CHARS = 1000
EXPONENT_LIMIT = 10_000
RESULT_MAX_BITS = 14_000  # about 4200 decimal digits: under Python's 4300-digit str() limit


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > EXPONENT_LIMIT:
                raise PluginArgumentError(f"exponents are limited to {EXPONENT_LIMIT}", argument="expression")
            if abs(left) > 1 and right > 0 and right * math.log2(abs(left)) > RESULT_MAX_BITS:
                raise PluginArgumentError("the result is too large", argument="expression")
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_evaluate(node.operand)))
    raise PluginArgumentError(
        "only numbers, + - * / // % ** and parentheses are allowed", argument="expression"
    )


def _checked(value: object) -> float:
    """A real, finite result of bounded size, or a clear refusal."""
    if isinstance(value, complex):
        raise PluginArgumentError("the result is not a real number", argument="expression")
    if isinstance(value, int) and value.bit_length() > RESULT_MAX_BITS:
        raise PluginArgumentError("the result is too large", argument="expression")
    if isinstance(value, float) and not math.isfinite(value):
        raise PluginArgumentError("the result is too large", argument="expression")
    if not isinstance(value, int | float):
        raise PluginArgumentError("the result is not a number", argument="expression")
    return value


def calculate(arguments: Mapping[str, str]) -> PluginOutput:
    expression = _required(arguments, "expression")
    if len(expression) > EXPRESSION_MAX_CHARS:
        raise PluginArgumentError(
            f"expression is longer than {EXPRESSION_MAX_CHARS} characters", argument="expression"
        )
    expression = expression.strip()
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise PluginArgumentError(
            f"expression is not valid arithmetic: {error.msg}", argument="expression"
        ) from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise PluginArgumentError("division by zero", argument="expression") from None
    except OverflowError:
        raise PluginArgumentError("the result is too large", argument="expression") from None
    if isinstance(value, float) and value.is_integer() and math.isfinite(value) and abs(value) < 2**53:
        value = int(value)
    result = str(value)
    return PluginOutput(output=f"{expression} = {result}", data={"result": result})


CALCULATOR = PluginSpec(
    name="calculator",
    display_name="Calculator",
    description="Evaluates an arithmetic expression: numbers, + - * / // % ** and parentheses.",
    version="1.0.0",
    run=calculate,
    argument_names=("expression",),
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)


def summarize(arguments: Mapping[str, str]) -> PluginOutput:
    text = _required(arguments, "text")
    raw_limit = arguments.get("max_sentences", "") or "3"
    try:
        limit = int(raw_limit)
    except ValueError:
        raise PluginArgumentError(
            f"max_sentences must be a whole number, got {raw_limit!r}", argument="max_sentences"
        ) from None
    if limit < 1:
        raise PluginArgumentError("max_sentences must be at least 1", argument="max_sentences")
    sentences = [" ".join(s.split()) for s in _SENTENCE.split(text) if s.strip()]
    frequency = Counter(w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS)

    def weight(sentence: str) -> float:
        words = [w for w in _WORD.findall(sentence.lower()) if w not in _STOP_WORDS]
        return sum(frequency[w] for w in words) / (len(words) or 1)

    ranked = sorted(range(len(sentences)), key=lambda i: (-weight(sentences[i]), i))[:limit]
    chosen = [sentences[i] for i in sorted(ranked)]
    return PluginOutput(
        output=" ".join(chosen),
        data={"sentences": str(len(chosen)), "of_sentences": str(len(sentences))},
    )


SUMMARIZE = PluginSpec(
    name="summarize",
    display_name="Summarize",
    description="Picks the sentences that best represent a text (extractive, deterministic).",
    version="1.0.0",
    run=summarize,
    argument_names=("text", "max_sentences"),
)
