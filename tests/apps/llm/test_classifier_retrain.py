"""Reviewers' task labels retrain the local task classifier: decided task-label reviews become its examples,
one retraining is queued at a time, a real llm worker fits and saves the head with its held-out accuracy,
and requests built from then on are answered by the new head (and name it in their cache key)."""

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied

from apps.core.roles import Role
from apps.experiments.models import Round, TaskLabel
from apps.experiments.stages.review_gate import auto_reviewer
from apps.llm.classifier_data import classifier_retrain, classifier_version_claim
from apps.llm.models import ClassifierExample, ClassifierVersion, LLMCall, LLMEndpoint
from apps.llm.selectors import llm_request_for
from apps.llm.services import llm_calls_enqueue, llm_endpoint_create
from apps.reviews.services import review_bulk_decide, review_decide, review_tasks_auto_accept
from tests.apps.llm.conftest import drain, make_experiment
from tests.factories import InstructionFactory, ReviewTaskFactory, user_with_role
from tests.integration.worker import WorkerProcess, wait_for
from workers.classify.retrain import head_sha256, in_heldout, merged_examples
from workers.classify.task_classifier import TaskHead
from workers.llm.prompts import get_template, task_text

V = ClassifierVersion.Status

# Questions about law: a category the shipped MT-Bench questions never label, so the shipped head cannot
# answer it; reviewers teach it.
LAW = [
    "Is a verbal agreement to sell a used car legally binding if nothing was signed?",
    "What rights does a tenant have when the landlord refuses to return the security deposit?",
    "Explain the difference between a misdemeanor and a felony in criminal law.",
    "Can an employer fire someone for discussing their salary with coworkers?",
    "What must a valid will contain for a court to accept it after the person dies?",
    "How does copyright law treat a photo of a public building that I took myself?",
    "What is the statute of limitations for suing over a breach of contract?",
    "Under what conditions can the police search a car without a warrant?",
    "Explain what 'power of attorney' means and when someone would grant it.",
    "Who is liable when a delivery driver injures a pedestrian while on the job?",
    "What is the legal process for contesting a parking ticket in court?",
    "Does a non-compete clause in an employment contract hold up if I move to another state?",
]
LAW_PROBES = [
    "Can my landlord evict me without a court order if I am two months late on rent?",
    "What legal steps are needed to trademark the name of a small business?",
]
CODE_PROBE = "Write a Python function that merges two sorted lists into one sorted list."


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _label_tasks(texts, category="Others"):
    """A round's task-label review tasks over fresh instructions labelled `category` by the local pass."""
    experiment = make_experiment()
    round_ = Round.objects.create(experiment=experiment, index=1)
    tasks = []
    for text in texts:
        instruction = InstructionFactory(dataset=experiment.dataset, text=text)
        label = TaskLabel.objects.create(
            experiment=experiment, instruction=instruction, category=category, source="local", confidence=0.3
        )
        tasks.append(ReviewTaskFactory(subject=label, kind="task_label", round=round_))
    return tasks


def _classifier() -> LLMEndpoint:
    return llm_endpoint_create(name="offline:task-classifier", backend=LLMEndpoint.Backend.LOCAL_CLASSIFIER)


def _requests(endpoint, texts):
    template = get_template("classify_task")
    return [llm_request_for(endpoint, template, {"instruction": text, "input": ""}) for text in texts]


@pytest.mark.django_db
def test_decided_task_labels_become_examples_and_queue_one_retraining_at_a_time(django_capture_on_commit_callbacks):
    accepted, edited, automatic = _label_tasks(["Summarise this memo.", "Is a handshake deal binding?", "Add 2+2."])
    reviewer = user_with_role(Role.REVIEWER)
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=reviewer, task_id=accepted.pk, decision="accept")
        review_decide(reviewer=reviewer, task_id=edited.pk, decision="edit", edited_text="law")
        review_tasks_auto_accept(task_ids=[automatic.pk], reviewer=auto_reviewer())

    examples = {e.text: e for e in ClassifierExample.objects.all()}
    assert set(examples) == {"Summarise this memo.", "Is a handshake deal binding?"}  # nobody looked at the third
    assert examples["Summarise this memo."].category == "Others"  # an accept keeps the label
    law = examples["Is a handshake deal binding?"]
    assert (law.category, law.source, law.reviewer_id) == ("Law", "review", reviewer.pk)
    where = (edited.subject.experiment_id, edited.round_id, edited.pk)
    assert (law.experiment_id, law.round_id, law.review_task_id) == where

    # Two decided reviews, one queued retraining; asking again while it waits queues nothing.
    queued = ClassifierVersion.objects.get()
    assert (queued.status, queued.reason) == (V.QUEUED, "review")
    operator = user_with_role(Role.OPERATOR)
    assert classifier_retrain(by=operator) == (queued, False)
    assert ClassifierVersion.objects.count() == 1
    with pytest.raises(PermissionDenied):
        classifier_retrain(by=reviewer)

    # Once a worker has taken it, new labels queue the next one (they were not in its data).
    assert classifier_version_claim(version_id=queued.pk).status == V.RUNNING
    assert classifier_version_claim(version_id=queued.pk) is None  # a second delivery does nothing
    [again] = _label_tasks(["Draft a lease clause on pets."])
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=reviewer, task_id=again.pk, decision="edit", edited_text="Law")
    assert list(ClassifierVersion.objects.values_list("status", flat=True)) == [V.QUEUED, V.RUNNING]
    # A decision that changes no example (the same text, the same label) asks for no retraining.
    [same] = _label_tasks(["Draft a lease clause on pets."], category="Law")
    classifier_version_claim(version_id=ClassifierVersion.objects.get(status=V.QUEUED).pk)
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=reviewer, task_id=same.pk, decision="accept")
    assert not ClassifierVersion.objects.filter(status=V.QUEUED).exists()
    assert ClassifierExample.objects.get(text="Draft a lease clause on pets.").review_task_id == same.pk


def test_the_heldout_split_is_fixed_and_a_reviewers_label_wins():
    texts = [f"Question number {i} about something." for i in range(2000)]
    held = [in_heldout(t) for t in texts]
    assert held == [in_heldout(t) for t in texts]
    assert 0.17 < sum(held) / len(held) < 0.23
    assert held != [in_heldout(t, seed=1) for t in texts]
    merged = merged_examples([("a", "Math"), ("b", "Writing")], [("b", "Law"), ("c", "Music")])
    assert merged == [("a", "Math", False), ("b", "Law", True), ("c", "Music", True)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_retrains_on_reviewers_labels_and_the_classifier_answers_with_the_new_head(tmp_path, media):
    worker = WorkerProcess(tmp_path, queues="llm", RETORT_MEDIA_ROOT=media).wait_ready()
    try:
        endpoint = _classifier()
        probes = [*LAW_PROBES, CODE_PROBE]
        before = llm_calls_enqueue(endpoint=endpoint, requests=_requests(endpoint, probes), purpose="classifier")
        wait_for(lambda: LLMCall.objects.filter(status="ok").count() == 3, 120, "the shipped head's labels", worker)
        labels = dict(LLMCall.objects.filter(pk__in=[c.pk for c in before]).values_list("pk", "parsed__category"))
        assert "Law" not in labels.values() and labels[before[2].pk] == "Code Generation"

        tasks = _label_tasks(LAW)
        # The table view's bulk edit: twelve decisions in one transaction, one retraining.
        outcome = review_bulk_decide(
            reviewer=user_with_role(Role.REVIEWER), task_ids=[t.pk for t in tasks], decision="edit", edited_text="Law"
        )
        assert outcome.done == len(LAW)
        assert ClassifierExample.objects.filter(category="Law").count() == len(LAW)
        version = ClassifierVersion.objects.get()
        wait_for(lambda: ClassifierVersion.objects.get(pk=version.pk).status in (V.READY, V.FAILED), 180, "it", worker)
        version.refresh_from_db()
        assert version.status == V.READY, version.error
        assert (version.examples, version.review_examples, version.categories) == (80 + len(LAW), len(LAW), 8)
        assert version.review_heldout_size == sum(in_heldout(task_text(t)) for t in LAW) > 0
        assert version.review_heldout_size < version.heldout_size < version.examples
        assert 0.0 <= version.accuracy <= 1.0 and 0.0 <= version.cv_accuracy <= 1.0
        head = media / version.path
        assert head_sha256(head) == version.sha256 and "Law" in TaskHead.load(head).classes

        # Requests built now name the new head in their key: new calls, answered by it.
        after = llm_calls_enqueue(endpoint=endpoint, requests=_requests(endpoint, probes), purpose="classifier")
        assert {c.pk for c in after}.isdisjoint(labels) and after[0].request["identity"] == {"head": version.sha256}
        wait_for(lambda: LLMCall.objects.filter(status="ok").count() == 6, 120, "the new head's labels", worker)
        rows = LLMCall.objects.in_bulk([c.pk for c in after])
        assert [rows[c.pk].parsed["category"] for c in after] == ["Law", "Law", "Code Generation"]
        assert f"version {version.pk}" in rows[after[0].pk].reply
    finally:
        worker.stop()


def _saved_head(media) -> ClassifierVersion:
    """A ready version whose head was fitted on random vectors (no embedder needed)."""
    rng = np.random.default_rng(0)
    head = TaskHead().fit(rng.normal(size=(20, 384)), ["Math", "Law"] * 10)
    path = media / "classifier" / "v-test" / "head"
    path.parent.mkdir(parents=True)
    head.save(path)
    return ClassifierVersion.objects.create(
        status=V.READY, reason="operator", path="classifier/v-test/head", sha256=head_sha256(path), examples=20,
        heldout_size=4, accuracy=0.875, cv_accuracy=0.9, categories=2,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_head_whose_files_changed_stops_the_endpoint_and_its_calls_wait(media):
    version = _saved_head(media)
    endpoint = _classifier()
    [call] = llm_calls_enqueue(endpoint=endpoint, requests=_requests(endpoint, [CODE_PROBE]), purpose="classifier")
    (media / version.path).with_suffix(".json").write_text("{}", encoding="utf-8")
    summary = drain(endpoint)
    call.refresh_from_db()
    endpoint.refresh_from_db()
    assert call.status == LLMCall.Status.PENDING and summary.ok == 0
    assert f"classifier version {version.pk}" in endpoint.last_error and "changed" in endpoint.last_error


@pytest.mark.django_db
def test_the_endpoint_page_shows_each_retrainings_accuracy_and_operators_can_retrain(client_for, media):
    endpoint = _classifier()
    page = f"/llm/endpoints/{endpoint.pk}/"
    viewer = client_for(Role.VIEWER)
    html = viewer.get(page).content.decode()
    assert "shipped labelled questions" in html and "Retrain now" not in html
    assert viewer.post("/llm/classifier/retrain/").status_code == 403
    ready = _saved_head(media)
    ClassifierVersion.objects.create(status=V.FAILED, reason="review", error="<script>alert(1)</script>")
    html = viewer.get(page).content.decode()
    assert f"version {ready.pk}</strong>" in html and "88%" in html and "0.875" in html and "(n=4)" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html

    assert f"version {ready.pk}</strong>" in viewer.get("/llm/classifier/").content.decode()  # the partial alone

    operator = client_for(Role.OPERATOR)
    html = operator.get(page).content.decode()
    assert "Retrain now" in html and f'name="next" value="{page}"' in html
    response = operator.post("/llm/classifier/retrain/", {"next": page})
    assert response.status_code == 302 and response["Location"] == page
    queued = ClassifierVersion.objects.get(status=V.QUEUED)
    assert queued.requested_by == operator.user and queued.reason == "operator"
    again = operator.post("/llm/classifier/retrain/", {"next": "https://elsewhere.example/"}, HTTP_HX_REQUEST="true")
    assert "already queued" in again.content.decode() and ClassifierVersion.objects.filter(status=V.QUEUED).count() == 1
    assert 'hx-trigger="every 5s"' in again.content.decode()  # it polls while a retraining is pending
    elsewhere = operator.post("/llm/classifier/retrain/", {"next": "https://elsewhere.example/"})
    assert elsewhere["Location"] == "/llm/endpoints/"
