"""An instruction's provenance, page and API, for instructions a real engine run made and judged: two
Lion rounds through the gateway against the local test server, every gate decided by a person through the
review services, every training approved by an operator."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.core.roles import Role
from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, Lineage, Round, Snapshot
from apps.experiments.provenance import instruction_provenance
from apps.experiments.services import experiment_approve_and_train, experiment_create, experiment_start
from apps.judging.models import Judgment, Response
from apps.reviews.models import ReviewTask
from apps.reviews.services import review_decide
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
MAX_QUERIES = 12  # the page's reads, whatever the number of answers, judgments and reviews


@pytest.fixture
def lion_run(llm_server):
    """A finished two-round Lion experiment whose gates a reviewer decided and whose training an operator
    approved, with the people who did it."""
    reviewer, operator = UserFactory(role=Role.REVIEWER), UserFactory(role=Role.OPERATOR)
    config = lion_config(llm_server, seed_dataset(), review={"hard_verdicts": "all", "generated": "all"})
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk, auto_approve=False)
    for _ in range(20):
        experiment = drive(experiment)
        if experiment.status == Experiment.Status.WAITING_REVIEW:
            waiting = ReviewTask.objects.filter(round__experiment=experiment).exclude(status=ReviewTask.Status.DONE)
            for task in waiting.order_by("pk"):
                review_decide(reviewer=reviewer, task_id=task.pk, decision="accept", note=f"looks right {task.pk}")
        elif experiment.status == Experiment.Status.WAITING_APPROVAL:
            experiment_approve_and_train(experiment_id=experiment.pk, by=operator)
        else:
            break
    assert experiment.status == Experiment.Status.FINISHED, experiment.status_reason
    return experiment, reviewer, operator


def _judged_generated(experiment) -> Instruction:
    """A round-1 generated instruction that round 2 judged and trained on."""
    second = Round.objects.get(experiment=experiment, index=2)
    lineage = (
        Lineage.objects.filter(round__experiment=experiment, round__index=1, instruction__judgments__round=second)
        .order_by("instruction_id")
        .first()
    )
    assert lineage is not None, "round 2 judged none of round 1's instructions"
    return lineage.instruction


def test_the_provenance_of_a_generated_instruction_names_its_seed_judge_and_reviewers(lion_run, client_for):
    experiment, reviewer, operator = lion_run
    item = _judged_generated(experiment)
    lineage = Lineage.objects.get(instruction=item)
    judgment = Judgment.objects.get(instruction=item)

    p = instruction_provenance(instruction_id=item.pk)
    assert p.lineage.seed_id == lineage.seed_id == item.parent_id
    assert p.lineage.round.index == 1 and p.lineage.origin in ("hard", "easy")
    assert [j.pk for j in p.judgments] == [judgment.pk]
    assert {a.role for a in p.answers} == {"teacher", "student"}
    kinds = {t.kind: t for t in p.reviews}
    assert set(kinds) == {"generated", "verdict"}  # its own review as a new item, then its judgment's
    for task in kinds.values():
        assert task.status == "done" and task.decision == "accept" and task.resolved_by == reviewer
        assert [v.reviewer for v in task.verdicts.all()] == [reviewer]
    assert kinds["verdict"].subject_label == f"judgment #{judgment.pk}"
    [use] = p.snapshots  # round 2 trained on it, approved by the operator
    assert use.item.snapshot.round.index == 2 and use.item.snapshot.round.approved_by == operator
    assert {m.pool for m in p.pools} == {"train", "cache"}

    html = client_for(Role.VIEWER).get(reverse("experiments:provenance", args=[item.pk])).content.decode()
    seed_url = reverse("experiments:provenance", args=[lineage.seed_id])
    assert f'<a href="{seed_url}">#{lineage.seed_id}</a>' in html
    if lineage.nearest_id:
        assert f"ROUGE-L {lineage.nearest_score:.3f}" in html
    assert f'data-testid="teacher-score">{judgment.teacher_score:.2f}<' in html
    assert f'data-testid="student-score">{judgment.student_score:.2f}<' in html
    assert f'data-testid="resolved-by">{reviewer.username}<' in html
    assert f'data-testid="reviewer">{reviewer.username}<' in html
    assert f'data-testid="approved-by">{operator.username}<' in html


def test_the_api_returns_the_same_facts(lion_run, api_for):
    experiment, reviewer, operator = lion_run
    item = _judged_generated(experiment)
    lineage = Lineage.objects.get(instruction=item)
    judgment = Judgment.objects.get(instruction=item)
    api = api_for(Role.VIEWER)  # token authentication
    response = api.get(f"/api/v1/instructions/{item.pk}/provenance/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["instruction"]["id"] == item.pk and body["instruction"]["origin"] == "generated"
    assert body["lineage"]["seed"]["id"] == lineage.seed_id and body["lineage"]["round"] == 1
    assert body["lineage"]["origin"] == lineage.origin
    assert body["lineage"]["nearest_rouge_l"] == lineage.nearest_score
    [j] = body["judgments"]
    assert (j["teacher_score"], j["student_score"], j["gap"], j["verdict"]) == (
        judgment.teacher_score,
        judgment.student_score,
        judgment.gap,
        judgment.verdict,
    )
    assert j["teacher_first"]["teacher_score"] == judgment.teacher_first_teacher_score
    assert j["student_first"]["student_score"] == judgment.student_first_student_score
    assert {r["kind"]: r["resolved_by"] for r in body["reviews"]} == {
        "generated": reviewer.username,
        "verdict": reviewer.username,
    }
    assert all(v["reviewer"] == reviewer.username for r in body["reviews"] for v in r["verdicts"])
    assert [s["approved_by"] for s in body["snapshots"]] == [operator.username]
    assert {a["role"] for a in body["answers"]} == {"teacher", "student"}
    assert body["truncated"] == []


def test_a_seeds_provenance_lists_what_was_made_from_it(lion_run):
    experiment, _, _ = lion_run
    seed_id = Lineage.objects.filter(experiment=experiment).values_list("seed_id", flat=True).first()
    p = instruction_provenance(instruction_id=seed_id)
    assert p.lineage is None and p.instruction.origin == "imported"
    assert {m.instruction_id for m in p.made_from_it} == set(
        Lineage.objects.filter(seed_id=seed_id).values_list("instruction_id", flat=True)
    )
    # Round 1 trained on the seed pool: the seed is in round 1's snapshot.
    assert 1 in {use.item.snapshot.round.index for use in p.snapshots}


def test_query_count_does_not_grow_with_answers_judgments_and_reviews(lion_run, django_assert_max_num_queries):
    experiment, _, _ = lion_run
    few = _judged_generated(experiment)
    # A seed carries more rows: answers and judgments in both rounds' cache pools, their reviews.
    many = (
        Judgment.objects.filter(round__experiment=experiment, instruction__origin="imported")
        .values_list("instruction_id", flat=True)
        .first()
    )
    assert Response.objects.filter(instruction_id=many).count() > Response.objects.filter(instruction=few).count()
    counts = []
    for pk in (few.pk, many):
        instruction_provenance(instruction_id=pk)  # content types cached, as in a running server
        with CaptureQueriesContext(connection) as queries:
            instruction_provenance(instruction_id=pk)
        counts.append(len(queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(MAX_QUERIES):
        instruction_provenance(instruction_id=many)


def test_roles_on_the_page_and_the_api(client, client_for, api_for):
    from tests.factories import InstructionFactory

    item = InstructionFactory(text="<script>alert(1)</script> Plan a picnic.")
    Response.objects.create(instruction=item, role="teacher", model="m", text='<img src=x onerror="alert(2)">')
    url = reverse("experiments:provenance", args=[item.pk])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client_for(None).get(url).status_code == 403
    viewer = client_for(Role.VIEWER).get(url)
    html = viewer.content.decode()
    assert viewer.status_code == 200
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert client_for(Role.VIEWER).get(reverse("experiments:provenance", args=[item.pk + 999])).status_code == 404

    api_url = f"/api/v1/instructions/{item.pk}/provenance/"
    assert api_for(None).get(api_url).status_code == 403
    body = api_for(Role.VIEWER).get(api_url).json()
    assert body["answers"][0]["text"] == '<img src=x onerror="alert(2)">'  # JSON carries the text as it is
    assert body["lineage"] is None and body["reviews"] == []
    assert api_for(Role.VIEWER).get(f"/api/v1/instructions/{item.pk + 999}/provenance/").status_code == 404


def test_snapshot_rows_name_the_round_even_when_the_snapshot_records_no_approver(lion_run):
    experiment, _, operator = lion_run
    snapshot = Snapshot.objects.filter(round__experiment=experiment, round__index=1).get()
    item_id = snapshot.items.values_list("instruction_id", flat=True).first()
    [use] = [u for u in instruction_provenance(instruction_id=item_id).snapshots if u.item.snapshot_id == snapshot.pk]
    approver = use.item.snapshot.approved_by or use.item.snapshot.round.approved_by
    assert approver == operator
