"""Bad input, experiment configs: YAML that attacks the reader (deep nesting, alias bombs over mappings,
Python tags, NUL and other characters YAML forbids, numbers past Python's conversion limit), absurd
parameters (negative, 10**9, NaN and infinity), endpoints that are no http(s) URL, NUL characters in
names, and names of datasets and endpoints that do not exist; beyond the cases of
tests/apps/experiments/config/.

Each is refused by parse_config / resolve_config with the key's path (and line, for text), by the
create_experiment command, by the new-experiment page (a 200 listing the problems, never a 500) and by
POST /api/v1/experiments/ (a 400 with the problems), and no table changes. Valid but hostile names (SQL,
template tags) are created as written and shown escaped.
"""

import html
import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.core.roles import Role
from apps.core.services import user_grant_role
from apps.experiments.config import ConfigError, parse_config, resolve_config
from apps.experiments.models import Experiment
from tests.apps.experiments.config.samples import LION, TAPIR, patched
from tests.apps.experiments.conftest import seed_dataset
from tests.reliability.unchanged import changed_tables, db_fingerprint

SEEDS = "bad-input-seeds"
GOOD_YAML = f"""\
name: bad-input-lion
recipe: lion
dataset: {SEEDS}
endpoints:
  teacher: offline:replay:{SEEDS}
  judge: offline:similarity_judge:{SEEDS}
  generator: offline:retrieval:{SEEDS}
params:
  rounds: 2
"""


def _with(*lines: str) -> str:
    return GOOD_YAML + "".join(f"{line}\n" for line in lines)


def _map_bomb() -> str:
    """The billion laughs over mappings (the existing test builds it over lists): 10 keys per level."""
    text = "l0: &l0 {" + ", ".join(f"k{i}: x" for i in range(10)) + "}\n"
    for level in range(1, 9):
        text += f"l{level}: &l{level} {{" + ", ".join(f"k{i}: *l{level - 1}" for i in range(10)) + "}\n"
    return GOOD_YAML + text


def _deep_block(levels: int) -> str:
    return GOOD_YAML + "student:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, levels)) + "  " * levels + "x\n"


def _deep_list(levels: int) -> list:
    """A list `levels` deep: within what a JSON body may carry, so a config given as data must cope with it."""
    top = inner = []
    for _ in range(levels):
        inner.append([])
        inner = inner[0]
    return top


DEEP_LIST = _deep_list(900)

# (id, config text, the path the problem is filed under, words the problem must contain)
# fmt: off
TEXT_CASES = [
    ("flow-nesting-10k", _with("params: " + "[" * 10_000 + "]" * 10_000), "c.yaml", ["nested too deeply"]),
    ("block-nesting-600", _deep_block(600), "c.yaml", ["nested too deeply"]),
    ("self-alias", _with("student: &s [*s]"), "c.yaml", ["nested too deeply"]),
    ("mapping-alias-bomb", _map_bomb(), "c.yaml", ["more than 100,000 values"]),
    ("python-object-apply", _with("seed: !!python/object/apply:os.system ['id']"), "c.yaml",
     ["could not determine a constructor", "python/object/apply:os.system", "line 10"]),
    ("python-name", _with("seed: !!python/name:os.system"), "c.yaml", ["python/name:os.system", "line 10"]),
    ("python-module", _with("student: !!python/module:os"), "c.yaml", ["python/module:os", "line 10"]),
    ("unknown-local-tag", _with("seed: !include secrets.yaml"), "c.yaml", ["'!include'", "line 10"]),
    ("binary-name", GOOD_YAML.replace("name: bad-input-lion", "name: !!binary aGVsbG8="), "name",
     ["expected text, got bytes", "line 1"]),
    ("timestamp-seed", _with("seed: 2026-12-01"), "seed", ["expected a whole number", "got date", "line 10"]),
    ("set-seed", _with("seed: !!set {a, b}"), "seed", ["got set"]),
    ("raw-nul", _with("seed: 1\x00"), "c.yaml", ["#x0000", "line 10"]),
    ("raw-escape-char", _with("seed: \x1b[31m"), "c.yaml", ["#x001b", "line 10"]),
    ("5000-digit-seed", _with("seed: 1" + "0" * 5000), "c.yaml", ["Exceeds the limit (4300 digits)"]),
    ("20000-bit-hex-seed", _with("seed: 0x" + "f" * 5000), "seed", ["got a 20,000-bit number", "line 10"]),
    ("tab-indent", GOOD_YAML.replace("  teacher", "\tteacher"), "c.yaml", ["not valid YAML", "line 5"]),
    ("unclosed-quote", _with('seed: "7'), "c.yaml", ["end of stream (line 11", "quoted scalar (line 10"]),
    ("list-as-key", _with("? [a, b]\n: 1"), "c.yaml", ["unhashable key", "line 10"]),
    ("rounds-minus-one", GOOD_YAML.replace("rounds: 2", "rounds: -1"), "params.rounds",
     ["from 1 to 100", "got -1", "line 9"]),
    ("rounds-1e9", GOOD_YAML.replace("rounds: 2", "rounds: 1e9"), "params.rounds", ["got 1000000000.0"]),
    ("rounds-nan", GOOD_YAML.replace("rounds: 2", "rounds: .nan"), "params.rounds", ["finite", "got nan"]),
    ("tau-nan", _with("  tau: .nan"), "params.tau", ["expected a finite number, got nan", "line 10"]),
    ("tau-inf", _with("  tau: .inf"), "params.tau", ["expected a finite number, got inf"]),
    ("tau-minus-inf", _with("  tau: -.inf"), "params.tau", ["got -inf"]),
    ("tau-text-nan", _with("  tau: NaN"), "params.tau", ['expected a number, got "NaN"']),
    ("overlap-99", _with("review: {overlap: 99}"), "review.overlap", ["from 1 to 5", "got 99"]),
    ("overlap-0", _with("review: {overlap: 0}"), "review.overlap", ["got 0"]),
    ("budget-inf", _with("budget: {usd: .inf}"), "budget.usd", ["got inf"]),
    ("learning-rate-nan", _with("student: {learning_rate: .nan}"), "student.learning_rate", ["finite"]),
    ("epochs-1e9", _with("student: {epochs: 1000000000}"), "student.epochs", ["(0, 1000]"]),
    ("utf16-text", GOOD_YAML.encode("utf-16"), "c.yaml", ["not UTF-8 text"]),
]
# fmt: on
# (id, base, patch, path, words): the same checks on a config given as data (the API's JSON object)
# fmt: off
DATA_CASES = [
    ("concurrency-0", TAPIR, {"endpoints": {"teacher": {"max_concurrency": 0}}}, "endpoints.teacher.max_concurrency",
     ["from 1 to 10000", "got 0"]),
    ("concurrency-1e6", TAPIR, {"endpoints": {"teacher": {"max_concurrency": 10**6}}},
     "endpoints.teacher.max_concurrency", ["got 1000000"]),
    ("file-url", TAPIR, {"endpoints": {"teacher": {"base_url": "file:///etc/passwd"}}}, "endpoints.teacher.base_url",
     ["http:// or https://", "file:///etc/passwd"]),
    ("javascript-url", TAPIR, {"endpoints": {"teacher": {"base_url": "javascript:alert(1)"}}},
     "endpoints.teacher.base_url", ["http:// or https://"]),
    ("gopher-url", TAPIR, {"endpoints": {"judge": {"base_url": "gopher://127.0.0.1:70/", "model": "m"}}},
     "endpoints.judge.base_url", ["http:// or https://"]),
    ("url-without-host", TAPIR, {"endpoints": {"teacher": {"base_url": "http://"}}}, "endpoints.teacher.base_url",
     ["http:// or https://"]),
    ("url-with-newline", TAPIR, {"endpoints": {"teacher": {"base_url": "http://a.example\n.evil/v1"}}},
     "endpoints.teacher.base_url", ["http:// or https://"]),
    ("url-100k", TAPIR, {"endpoints": {"teacher": {"base_url": "http://a.example/" + "x" * 100_000}}},
     "endpoints.teacher.base_url", ["at most 500 characters"]),
    ("name-100k", LION, {"name": "x" * 100_000}, "name", ["at most 200 characters"]),
    ("name-newline", LION, {"name": "a\nb"}, "name", ["one line of text"]),
    ("name-nul", LION, {"name": "a\x00b"}, "name", ["NUL character"]),
    ("dataset-nul", LION, {"dataset": "seeds\x00"}, "dataset", ["NUL character"]),
    ("model-nul", TAPIR, {"endpoints": {"teacher": {"model": "gpt\x00"}}}, "endpoints.teacher.model", ["NUL"]),
    ("key-nul", LION, {"params": {"tau\x00": 1}}, "params.tau\x00", ["the key contains a NUL character"]),
    ("recipe-list", LION, {"recipe": ["lion"]}, "recipe", ["expected one of", "got a list"]),
    ("dataset-mapping", LION, {"dataset": {"name": "seeds"}}, "dataset", ["expected a dataset's name, got a mapping"]),
    ("seed-float", LION, {"seed": 1.5}, "seed", ["got 1.5"]),
    ("seed-4000-digits", LION, {"seed": 10**4000}, "seed", ["from 0 to 4294967295"]),
    ("params-deep-900", None, {**LION, "params": {"eval": DEEP_LIST}}, "params.eval", ["expected a mapping"]),
]
# fmt: on
# (id, patch over a config that resolves, path, words): names that parse but name nothing in the database
# fmt: off
MISSING = [
    ("missing-dataset", {"dataset": "no-such-dataset"}, "dataset", ['no dataset named "no-such-dataset"']),
    ("missing-eval-dataset", {"eval_dataset": "no-such-eval"}, "eval_dataset", ['"no-such-eval"']),
    ("missing-endpoint", {"endpoints": {"judge": "no-such-endpoint"}}, "endpoints.judge", ['"no-such-endpoint"']),
    ("missing-replay-dataset", {"endpoints": {"teacher": "offline:replay:gone"}}, "endpoints.teacher",
     ['no dataset named "gone"']),
]
# fmt: on


def _problems(error: ConfigError) -> dict:
    """{path: its problems joined}: a path may have more than one (a NUL in a name is not one line either)."""
    joined: dict[str, str] = {}
    for path, problem in error.problems:
        joined[path] = f"{joined[path]}; {problem}" if path in joined else problem
    return joined


def _check(problems: dict, path: str, words: list[str]) -> None:
    assert path in problems, f"{path!r} not among {list(problems)}"
    for word in words:
        assert word in problems[path], f"{word!r} not in {problems[path]!r}"


def test_the_corpus_is_large_and_its_ids_unique():
    ids = [c[0] for c in TEXT_CASES + DATA_CASES + MISSING]
    assert len(ids) >= 50 and len(set(ids)) == len(ids)


@pytest.mark.parametrize(("case_id", "text", "path", "words"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_bad_config_text_is_refused_with_its_path_and_line(case_id, text, path, words):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename="c.yaml")
    _check(_problems(caught.value), path, words)


@pytest.mark.parametrize(("case_id", "base", "patch", "path", "words"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_config_data_is_refused_with_its_path(case_id, base, patch, path, words):
    with pytest.raises(ConfigError) as caught:
        parse_config(patched(base, patch) if base is not None else patch)  # (deepcopy cannot copy DEEP_LIST)
    _check(_problems(caught.value), path, words)


@pytest.fixture
def seeds(db):
    return seed_dataset(6, name=SEEDS)


@pytest.mark.parametrize(("case_id", "patch", "path", "words"), MISSING, ids=[c[0] for c in MISSING])
def test_a_config_naming_what_does_not_exist_is_refused_with_its_path(seeds, case_id, patch, path, words):
    config = parse_config(patched(parse_config(GOOD_YAML).to_dict(), patch))
    before = db_fingerprint()
    with pytest.raises(ConfigError) as caught:
        resolve_config(config)
    _check(_problems(caught.value), path, words)
    assert changed_tables(before, db_fingerprint()) == []


# The same input through the three doors that create experiments: a sample of each table.
DOORS = [(c[0], c[1], c[2], c[3]) for c in TEXT_CASES[::2]] + [
    (c[0], patched(parse_config(GOOD_YAML).to_dict(), c[1]), c[2], c[3]) for c in MISSING
]


def _as_text(config) -> str | bytes:
    return config if isinstance(config, str | bytes) else json.dumps(config)


@pytest.mark.parametrize(("case_id", "config", "path", "words"), DOORS, ids=[c[0] for c in DOORS])
def test_create_experiment_refuses_it_and_creates_nothing(seeds, tmp_path, case_id, config, path, words):
    file = tmp_path / "c.yaml"
    text = _as_text(config)
    file.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    before = db_fingerprint()
    with pytest.raises(CommandError) as caught:
        call_command("create_experiment", "--config", str(file))
    message = str(caught.value)
    where = str(file) if path == "c.yaml" else path
    assert f"{where}: " in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert changed_tables(before, db_fingerprint()) == []


def _operator():
    user = get_user_model().objects.create(username=f"operator-{get_user_model().objects.count()}")
    user_grant_role(username=user.username, role=Role.OPERATOR)
    return user


@pytest.mark.parametrize(("case_id", "config", "path", "words"), DOORS, ids=[c[0] for c in DOORS])
def test_the_api_answers_400_with_the_problem_and_creates_nothing(seeds, case_id, config, path, words):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=_operator()).key}")
    before = db_fingerprint()
    text = _as_text(config)
    response = api.generic("POST", "/api/v1/experiments/", text, content_type="application/yaml")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    if isinstance(text, bytes) and not text.startswith(b"name"):  # not UTF-8: refused by the body's parser
        assert body == {"config": ["The config text is not UTF-8."]}
    else:
        problems = _problems(ConfigError([(p["path"], p["problem"]) for p in body["problems"]]))
        _check(problems, "config" if path == "c.yaml" else path, words)
    assert changed_tables(before, db_fingerprint()) == []


@pytest.mark.parametrize(("case_id", "config", "path", "words"), DOORS, ids=[c[0] for c in DOORS])
def test_the_new_experiment_page_lists_the_problem_and_creates_nothing(seeds, client, case_id, config, path, words):
    client.force_login(_operator())
    text = _as_text(config)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")  # a browser sends the textarea as UTF-8 text
    before = db_fingerprint()
    response = client.post("/experiments/new/", {"config": text, "action": "estimate"})
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    for word in words if not isinstance(config, bytes) else ["Null characters are not allowed"]:
        assert word in page, f"{word!r} not on the page"
    assert changed_tables(before, db_fingerprint()) == []


def test_hostile_but_valid_names_are_created_as_written_and_shown_escaped(seeds, client):
    hostile = "x'); DROP TABLE experiments_experiment; -- {{ settings.SECRET_KEY }} {% debug %}"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=_operator()).key}")
    config = patched(parse_config(GOOD_YAML).to_dict(), {"name": hostile[:200]})
    response = api.post("/api/v1/experiments/", {"config": config}, format="json")
    assert response.status_code == 201, response.content[:300]
    experiment = Experiment.objects.get(pk=response.json()["id"])
    assert experiment.name == hostile and experiment.config["name"] == hostile
    client.force_login(_operator())
    for url in ("/experiments/", f"/experiments/{experiment.pk}/"):
        page = client.get(url).content.decode()
        assert settings.SECRET_KEY not in page and "{{ settings.SECRET_KEY }}" in page
        assert "x&#x27;); DROP TABLE" in page
