import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.algorithms.step_by_step import ArithmeticSyntaxError, evaluate


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("( 84.0 / 2.0 )", 42.0),
        ("(10 - (3 + 6))", 1.0),
        ("2 + 3 * 4", 14.0),
        ("(2 + 3) * 4", 20.0),
        ("8 / 4 / 2", 1.0),
        ("10 - 4 - 3", 3.0),
        ("-(3 - 5) * -2", -4.0),
        ("( 10.0 - ( -3.0 ) )", 13.0),
        (".5 + 1.", 1.5),
    ],
)
def test_hand_values(text, value):
    assert evaluate(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "(",
        "(1 + 2",
        "1 + 2)",
        "2 ** 3",
        "__import__('os')",
        "some - 5",
        "1 / 0",
        "1 / (2 - 2)",
        "3 4",
        "1 +",
    ],
)
def test_rejects_what_is_not_plain_arithmetic(text):
    with pytest.raises(ArithmeticSyntaxError):
        evaluate(text)


def test_rejects_deep_nesting_without_recursion_error():
    with pytest.raises(ArithmeticSyntaxError):
        evaluate("(" * 60 + "1" + ")" * 60)


NUMBER = st.integers(0, 999).map(lambda n: (str(n), float(n)))


def combine(children):
    def join(parts):
        (left, a), op, (right, b) = parts
        if op == "/" and b == 0:
            return (f"({left} + {right})", a + b)
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[op]
        return (f"({left} {op} {right})", value)

    return st.tuples(children, st.sampled_from("+-*/"), children).map(join)


@given(st.recursive(NUMBER, combine, max_leaves=12))
def test_generated_expressions_evaluate_to_their_value(case):
    text, value = case
    assert evaluate(text) == pytest.approx(value, rel=1e-12, abs=1e-12)
