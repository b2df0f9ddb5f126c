"""Config text: YAML and JSON, line numbers in problems, syntax errors and documents that are no config."""

import json

import pytest

from apps.experiments.config import ConfigError, parse_config
from tests.apps.experiments.config.samples import LION

LION_YAML = """\
name: lion-demo
recipe: lion
dataset: demo-alpaca
endpoints:
  teacher: offline:replay:demo-alpaca
  judge: offline:similarity_judge:demo-alpaca
  generator: offline:retrieval:demo-alpaca
student: {model: builtin:tiny, learning_rate: 1e-4}
params:
  rounds: 2
  tau: 1
seed: 7
"""


def problems_of(text: str, filename: str = "lion.yaml") -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename=filename)
    return dict(caught.value.problems)


def test_yaml_text_parses_and_reads_exponents_as_numbers():
    config = parse_config(LION_YAML, filename="lion.yaml")
    # PyYAML alone reads "1e-4" (no dot) as a string; the config reads it as JSON and YAML 1.2 do.
    assert config.student["learning_rate"] == 1e-4
    assert config.params["tau"] == 1.0


def test_a_bad_key_names_its_line():
    text = LION_YAML.replace("  tau: 1\n", "  tau: high\n").replace("dataset: demo-alpaca", "datset: demo-alpaca")
    problems = problems_of(text)
    assert problems["params.tau"] == 'expected a number, got "high" (line 11)'
    assert problems["datset"] == 'unknown key (did you mean "dataset"?) (line 3)'
    # a missing key points at its parent's line
    assert problems["dataset"] == "lion needs its seed dataset: dataset: <name>"
    text = LION_YAML.replace("  generator: offline:retrieval:demo-alpaca\n", "")
    assert problems_of(text)["endpoints.generator"].endswith("(line 4)")


def test_lines_inside_flow_mappings_and_lists():
    text = LION_YAML.replace("learning_rate: 1e-4", "learning_rate: 3")
    assert problems_of(text)["student.learning_rate"].endswith("(line 8)")
    mos = "name: m\nrecipe: mos\ndatasets:\n  - name: a\n  - name: b\n    weight: -2\n"
    assert problems_of(mos)["datasets[1].weight"] == "expected a number above 0, got -2 (line 6)"


def test_a_yaml_syntax_error_names_its_line():
    text = LION_YAML.replace("  rounds: 2\n", "  rounds: [2\n")
    problems = problems_of(text)
    assert list(problems) == ["lion.yaml"]
    assert problems["lion.yaml"].startswith("not valid YAML: ")
    assert "(line 11, column" in problems["lion.yaml"]
    bad_indent = "name: x\nrecipe: lion\n  dataset: d\n"
    assert "(line 3, column" in problems_of(bad_indent)["lion.yaml"]


def test_a_repeated_key_is_an_error_not_a_silent_override():
    problems = problems_of(LION_YAML + "seed: 8\n")
    assert problems["seed"] == "appears twice (lines 12 and 13)"


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("- name: x\n- recipe: lion\n", "got a list"),
        ("just a string\n", 'got "just a string"'),
        ("", "got an empty document"),
        ("# only a comment\n", "got an empty document"),
        ("42\n", "got 42"),
    ],
)
def test_a_document_that_is_not_a_mapping_is_refused(text, got):
    problems = problems_of(text, filename="x.yaml")
    assert list(problems) == ["x.yaml"]
    assert problems["x.yaml"].startswith("expected a mapping of config keys (name, recipe, dataset")
    assert got in problems["x.yaml"]


def test_several_documents_in_one_file_are_refused():
    assert "not valid YAML" in problems_of("name: a\n---\nname: b\n")["lion.yaml"]


def test_json_text_parses_with_lines_and_json_errors_name_their_line():
    text = json.dumps(LION, indent=2)
    assert parse_config(text, filename="lion.json") == parse_config(LION)
    bad = text.replace('"rounds": 2', '"rounds": "two"')
    problem = problems_of(bad, filename="lion.json")["params.rounds"]
    assert problem.startswith('expected a whole number, got "two" (line ')
    broken = text.replace('"recipe": "lion",', '"recipe": "lion"')
    problems = problems_of(broken, filename="lion.json")
    assert problems["lion.json"].startswith("not valid JSON: Expecting ',' delimiter (line 4, column")


def test_bytes_are_read_as_utf8_and_other_bytes_are_refused():
    assert parse_config(LION_YAML.encode()).name == "lion-demo"
    problems = problems_of(b"name: \xff\xfe\n", filename="x.yaml")
    assert problems["x.yaml"].startswith("not UTF-8 text")


def test_without_a_filename_the_document_is_called_config():
    with pytest.raises(ConfigError) as caught:
        parse_config("[1, 2]")
    assert caught.value.problems[0][0] == "config"
    assert str(caught.value).startswith("config: expected a mapping")


def test_anchors_work_and_an_alias_bomb_is_refused_quickly():
    text = LION_YAML.replace("  rounds: 2\n", "  rounds: &two 2\n  eval: {max_items: *two}\n")
    assert parse_config(text).params["eval"] == {"max_items": 2}
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [{', '.join(['*' + previous] * 10)}]\n"
    problems = problems_of(bomb, filename="bomb.yaml")
    assert problems == {"bomb.yaml": "more than 100,000 values (aliases expanded)"}


def test_an_oversized_document_is_refused():
    assert "a config has at most 1,000,000" in problems_of("#" * 1_000_001, filename="big.yaml")["big.yaml"]
