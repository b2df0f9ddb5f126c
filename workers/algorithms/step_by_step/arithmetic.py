"""A tiny arithmetic evaluator for SVAMP equations: numbers, + - * /, unary signs and parentheses.

Teacher completions are untrusted text, so they never reach eval(); anything outside this grammar is
rejected with ArithmeticSyntaxError:

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := ("+" | "-") factor | number | "(" expr ")"
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(.))")
_MAX_TOKENS = 500
_MAX_DEPTH = 50


class ArithmeticSyntaxError(ValueError):
    """The text is not an arithmetic expression this evaluator accepts (or divides by zero)."""


def _tokens(text: str) -> list[str]:
    tokens = []
    for number, symbol in _TOKEN.findall(text):
        if number:
            tokens.append(number)
        elif symbol.strip():
            if symbol not in "+-*/()":
                raise ArithmeticSyntaxError(f"unexpected {symbol!r}")
            tokens.append(symbol)
    if len(tokens) > _MAX_TOKENS:
        raise ArithmeticSyntaxError("expression too long")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str:
        piece = self.peek()
        if piece is None:
            raise ArithmeticSyntaxError("expression ends too early")
        self.at += 1
        return piece

    def expr(self, depth: int) -> float:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            value = value + self.term(depth) if self.take() == "+" else value - self.term(depth)
        return value

    def term(self, depth: int) -> float:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            if self.take() == "*":
                value *= self.factor(depth)
            else:
                divisor = self.factor(depth)
                if divisor == 0:
                    raise ArithmeticSyntaxError("division by zero")
                value /= divisor
        return value

    def factor(self, depth: int) -> float:
        if depth > _MAX_DEPTH:
            raise ArithmeticSyntaxError("expression nested too deeply")
        piece = self.take()
        if piece in ("+", "-"):
            value = self.factor(depth + 1)
            return value if piece == "+" else -value
        if piece == "(":
            value = self.expr(depth + 1)
            if self.take() != ")":
                raise ArithmeticSyntaxError("missing ')'")
            return value
        if piece in ("*", "/", ")"):
            raise ArithmeticSyntaxError(f"unexpected {piece!r}")
        return float(piece)


def evaluate(text: str) -> float:
    """The value of an arithmetic expression such as "( 84.0 / 2.0 )" or "(10 - (3 + 6))"."""
    parser = _Parser(_tokens(text))
    value = parser.expr(0)
    if parser.peek() is not None:
        raise ArithmeticSyntaxError(f"unexpected {parser.peek()!r} after the expression")
    return value
