"""Keys that are valid but unused by the recipe (a classifier for Lion, a rewrites gate for Lion, a teacher
for a MoS run without teacher answers) are noted, not refused, and leave the experiment unchanged."""

from apps.experiments.config import parse_config
from tests.apps.experiments.config.samples import LION, MOS, patched

# The example of issue 8 ("the keys other tools and users' scripts rely on"), which names every role and
# gate whatever the recipe.
ISSUE_EXAMPLE = """\
name: lion-demo
recipe: lion                     # lion | tapir | step_by_step | mos
dataset: demo-alpaca
eval_dataset: demo-eval
endpoints:
  teacher: {base_url: https://api.openai.com/v1, model: gpt-4o, api_key_env: OPENAI_API_KEY}
  judge: teacher-endpoint-name
  generator: {base_url: http://127.0.0.1:8001/v1, model: qwen2.5-72b-instruct, api_key_env: VLLM_API_KEY}
  classifier: offline:task-classifier
  student: {base_url: http://127.0.0.1:8002/v1, model: my-student}
student: {model: builtin:tiny, finetune: full}
params: {rounds: 3, tau: 1.0, new_per_round: 6000, hard_easy_ratio: 1.0, rouge_threshold: 0.7}
review: {hard_verdicts: all, rewrites: sample:0.2, generated: sample:0.1}
budget: {usd: 50}
seed: 1234
"""


def test_the_issues_example_config_loads_with_notes_for_what_lion_does_not_use():
    config = parse_config(ISSUE_EXAMPLE, filename="lion.yaml")
    assert config.recipe == "lion" and config.params["tau"] == 1.0 and config.review["hard_verdicts"]["mode"] == "all"
    notes = dict(config.notes)
    assert "lion has no classifier" in notes["endpoints.classifier"] and "(line 9)" in notes["endpoints.classifier"]
    assert "a gate of tapir" in notes["review.rewrites"]
    assert "classifier" not in config.endpoints and "rewrites" not in config.review


def test_ignored_keys_do_not_change_the_experiment():
    plain = parse_config(LION)
    noisy = parse_config(patched(LION, {"endpoints": {"classifier": "c"}, "review": {"rewrites": "all"}}))
    assert noisy.hash == plain.hash and noisy.to_dict() == plain.to_dict() and plain.notes == ()
    mos = parse_config(patched(MOS, {"endpoints": {"teacher": "t"}}))
    assert "unless params.teacher_answers is true" in dict(mos.notes)["endpoints.teacher"]
    assert "teacher" not in mos.endpoints
