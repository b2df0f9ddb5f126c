"""docs/experiment-config.md lists every key the parser takes, and its examples are valid configs."""

import re
from pathlib import Path

import pytest

from apps.experiments.config import GATES, PARAMS, STUDENT, parse_config
from apps.experiments.config.endpoints import inline_fields
from apps.experiments.config.schema import TOP_LEVEL

DOC = (Path(__file__).resolve().parents[4] / "docs" / "experiment-config.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.DOTALL)


def documented(key: str) -> bool:
    return re.search(rf"^ *\| `{re.escape(key)}` \|", DOC, flags=re.MULTILINE) is not None


def test_every_key_has_a_row_in_the_docs():
    keys = set(TOP_LEVEL) | set(STUDENT) | set(inline_fields()) | {"usd", "tokens"}
    keys |= {key for table in PARAMS.values() for key in table}
    keys |= {gate for gates in GATES.values() for gate in gates}
    missing = sorted(key for key in keys if not documented(key))
    assert missing == []


def test_the_docs_show_one_example_per_recipe():
    assert sorted(parse_config(text).recipe for text in EXAMPLES) == ["lion", "mos", "step_by_step", "tapir"]


@pytest.mark.parametrize("text", EXAMPLES)
def test_each_example_in_the_docs_is_a_valid_config(text):
    config = parse_config(text, filename="docs/experiment-config.md")
    assert parse_config(config.to_dict()) == config
