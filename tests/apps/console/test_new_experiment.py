"""The new-experiment form: the config file's own validation with key paths (beside the friendly fields or
in a list), the demo configs one click away, the estimate before anything is created, create and start."""

import html
import re

import pytest
from django.urls import reverse

from apps.console.demos import demo_configs
from apps.core.roles import Role
from apps.datasets.demo import demo_datasets_load
from apps.experiments.config import ConfigError, parse_config, resolve_config
from apps.experiments.estimates import estimate_round_one
from apps.experiments.models import Experiment, Round
from apps.llm.models import LLMCall

pytestmark = pytest.mark.django_db
URL = "/experiments/new/"

BAD = """name: bad-one
recipe: lion
dataset: demo-alpaca-seeds
endpoints:
  teacher: offline:replay:demo-teacher-answers
  judge: offline:similarity_judge:demo-teacher-answers
  generator: offline:retrieval:demo-alpaca-reserve
params:
  tua: 1.0
  rounds: 0
"""


def _problems(response) -> list[str]:
    block = re.search(r'data-testid="config-errors">(.*?)</div>', response.content.decode(), flags=re.S)
    assert block, "no error list on the page"
    return [html.unescape(re.sub(r"<[^>]+>", "", item)) for item in re.findall(r"<li>(.*?)</li>", block.group(1))]


def _field_errors(response, name: str) -> list[str]:
    found = re.findall(rf'data-testid="error-{name}">(.*?)</p>', response.content.decode(), flags=re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)) for item in found]


def _demo_text(key: str) -> str:
    return next(d for d in demo_configs() if d.key == key).text()


def test_the_form_is_for_operators_only(client_for):
    assert client_for(Role.VIEWER).get(URL).status_code == 403
    viewer_post = client_for(Role.VIEWER).post(URL, {"config": _demo_text("lion"), "action": "create"})
    assert viewer_post.status_code == 403
    assert client_for(Role.REVIEWER).get(URL).status_code == 403
    assert not Experiment.objects.exists()
    assert client_for(Role.OPERATOR).get(URL).status_code == 200


def test_every_demo_config_is_one_click_away(client_for):
    client = client_for(Role.OPERATOR)
    page = client.get(URL).content.decode()
    keys = [d.key for d in demo_configs()]
    assert keys[:4] == ["lion", "tapir", "step_by_step", "mos"]
    for key in keys:
        assert f'href="{URL}?demo={key}"' in page
        prefilled = client.get(URL, {"demo": key}).content.decode()
        textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", prefilled, flags=re.S).group(1)
        assert html.unescape(textarea).strip() == _demo_text(key).strip()
    # Only the listed files: a path is not a demo's name.
    other = client.get(URL, {"demo": "../../config/settings"}).content.decode()
    assert re.search(r"<textarea[^>]*>\s*</textarea>", other)


def test_problems_are_the_config_files_own_with_their_key_paths_and_lines(client_for):
    with pytest.raises(ConfigError) as raised:
        parse_config(BAD)
    expected = [f"{path}: {problem}" for path, problem in raised.value.problems]
    assert any(p.startswith("params.tua: unknown key") and "line 9" in p for p in expected), expected
    assert any(p.startswith("params.rounds: ") and "line 10" in p for p in expected), expected

    response = client_for(Role.OPERATOR).post(URL, {"config": BAD, "action": "create"})
    assert response.status_code == 200
    assert _problems(response) == expected
    assert "tua: 1.0" in html.unescape(response.content.decode())  # the text stays as typed
    assert not Experiment.objects.exists()


def test_a_missing_dataset_is_named_by_its_key(client_for):
    demo_datasets_load()
    text = _demo_text("lion").replace("dataset: demo-alpaca-seeds", "dataset: demo-alpaca-seedz")
    response = client_for(Role.OPERATOR).post(URL, {"config": text, "action": "estimate"})
    problems = _problems(response)
    assert len(problems) == 1 and problems[0].startswith('dataset: no dataset named "demo-alpaca-seedz"')
    assert 'did you mean "demo-alpaca-seeds"' in problems[0]
    assert 'data-testid="estimate-table"' not in response.content.decode()


def test_friendly_fields_are_validated_as_config_keys_and_show_their_errors_beside_them(client_for):
    demo_datasets_load()
    form = {"config": _demo_text("lion"), "seed": "twelve", "budget_usd": "-3", "rounds": "0", "action": "create"}
    response = client_for(Role.OPERATOR).post(URL, form)
    assert response.status_code == 200
    assert _field_errors(response, "seed") == ['seed: expected a whole number, got "twelve"']
    assert _field_errors(response, "budget_usd")[0].startswith("budget.usd: expected an amount from 0 to")
    assert _field_errors(response, "rounds")[0].startswith("params.rounds: expected a whole number")
    assert 'data-testid="error-name"' not in response.content.decode()
    assert not Experiment.objects.exists()

    # The same values in the file give the same problems, by the same paths.
    text = _demo_text("lion").replace("seed: 1234", "seed: twelve\nbudget: {usd: -3}").replace("rounds: 2", "rounds: 0")
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    paths = {path for path, _ in raised.value.problems}
    assert paths == {"seed", "budget.usd", "params.rounds"}


def test_the_estimate_is_round_ones_calls_tokens_and_cost_and_creates_nothing(client_for):
    demo_datasets_load()
    text = _demo_text("lion")
    response = client_for(Role.OPERATOR).post(URL, {"config": text, "action": "estimate"})
    page = response.content.decode()
    assert 'data-testid="estimate-table"' in page
    rows = estimate_round_one(resolve_config(parse_config(text)))
    body = re.search(r'data-testid="estimate-table">.*?<tbody>(.*?)</tbody>', page, flags=re.S).group(1)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]
    assert [c[0] for c in cells] == [r.stage for r in rows]
    assert [c[2].replace(",", "") for c in cells] == [str(r.calls) for r in rows]
    assert dict((c[0], int(c[2])) for c in cells)["teacher_train"] == 40  # the demo's 40 seeds
    assert not Experiment.objects.exists() and not LLMCall.objects.exists()


def test_create_and_start_from_a_demo(client_for):
    demo_datasets_load()
    client = client_for(Role.OPERATOR)
    response = client.post(URL, {"config": _demo_text("lion"), "start": "on", "action": "create"})
    experiment = Experiment.objects.get(name="lion-demo")
    assert response.status_code == 302 and response["Location"] == reverse("console:experiment", args=[experiment.pk])
    assert experiment.status == Experiment.Status.RUNNING and not experiment.auto_approve
    assert experiment.created_by == client.user
    assert Round.objects.filter(experiment=experiment, index=1).exists()

    # The same config again changes nothing; the same name with another config is refused at "name".
    again = client.post(URL, {"config": _demo_text("lion"), "action": "create"}, follow=True)
    assert "already exists with this config" in again.content.decode()
    other = client.post(URL, {"config": _demo_text("lion"), "seed": "7", "action": "create"})
    assert _problems(other)[0].startswith("name: An experiment named 'lion-demo' already exists with another config")
    renamed = client.post(URL, {"config": _demo_text("lion"), "seed": "7", "name": "lion-seven", "action": "create"})
    assert renamed.status_code == 302
    seven = Experiment.objects.get(name="lion-seven")
    assert seven.seed == 7 and seven.status == Experiment.Status.DRAFT


def test_with_htmx_the_form_swaps_itself_and_success_redirects_the_browser(client_for):
    demo_datasets_load()
    client = client_for(Role.OPERATOR)
    bad = client.post(URL, {"config": BAD, "action": "create"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200 and bad.templates[0].name == "console/_new_form.html"
    assert "<html" not in bad.content.decode() and len(_problems(bad)) == 2
    good = client.post(URL, {"config": _demo_text("tapir"), "action": "create"}, HTTP_HX_REQUEST="true")
    experiment = Experiment.objects.get(name="tapir-demo")
    assert good["HX-Redirect"] == reverse("console:experiment", args=[experiment.pk])


def test_an_empty_config_says_what_to_do(client_for):
    response = client_for(Role.OPERATOR).post(URL, {"config": "  ", "action": "estimate"})
    assert _problems(response) == ["config: paste a config (YAML or JSON) or pick a demo above"]
