"""Local generation jobs through the gpu task's runner, with the stand-in generator subprocess."""

from pathlib import Path

import pytest

from apps.core.errors import RetortError
from apps.training.models import Artifact, GenerationItem
from apps.training.running import generation_job_run
from apps.training.selectors import artifact_latest_for_round, generation_outputs
from apps.training.services import generation_job_cancel, training_generation_enqueue
from apps.training.signals import generation_job_finished
from tests.apps.training.conftest import refuse_first_calls

pytestmark = pytest.mark.django_db(transaction=True)

PROMPTS = [("answer:7:0", "Name a colour."), ("answer:3:0", "Name a fruit."), ("answer:5:0", "Count to three.")]


def _enqueue(round_, artifact=None, prompts=PROMPTS):
    return training_generation_enqueue(
        round_id=round_.pk,
        artifact_id=artifact.pk if artifact else None,
        base_model="builtin:tiny",
        prompts=prompts,
        params={"max_new_tokens": 8, "temperature": 0.0},
    )


def test_generation_stores_each_answer_under_its_key_in_prompt_order(fake_trainer, training_round, sent):
    round_, _, _ = training_round
    heard = []

    def receiver(sender, **kwargs):
        heard.append((kwargs["job_id"], kwargs["status"]))

    generation_job_finished.connect(receiver)
    try:
        job = generation_job_run(job_id=_enqueue(round_).pk)
    finally:
        generation_job_finished.disconnect(receiver)
    assert (job.status, job.exit_code, job.done_count, job.attempts) == ("succeeded", 0, 3, 1)
    outputs = list(generation_outputs(job_id=job.pk))
    assert [(o.key, o.text) for o in outputs] == [(k, f"echo: {p}") for k, p in PROMPTS]
    assert outputs[0].tokens == 4
    assert heard == [(job.pk, "succeeded")]
    assert generation_job_run(job_id=job.pk) is None


def test_generation_with_a_checkpoint_passes_its_adapter_to_the_generator(fake_trainer, training_round, tmp_path, sent):
    round_, _, _ = training_round
    folder = tmp_path / "final"
    folder.mkdir()
    artifact = Artifact.objects.create(
        kind=Artifact.Kind.ADAPTER,
        round=round_,
        path=str(folder),
        sha256="a" * 64,
        size_bytes=1,
        base_model="builtin:tiny",
    )
    assert artifact_latest_for_round(round_id=round_.pk) == artifact
    job = generation_job_run(job_id=_enqueue(round_, artifact).pk)
    assert {o.text for o in generation_outputs(job_id=job.pk)} == {f"echo: {p} [final]" for _, p in PROMPTS}


def test_a_checkpoint_from_another_base_model_is_refused(fake_trainer, training_round, tmp_path, sent):
    round_, _, _ = training_round
    artifact = Artifact.objects.create(
        kind=Artifact.Kind.ADAPTER, round=round_, path=str(tmp_path), sha256="b" * 64, size_bytes=1, base_model="other"
    )
    with pytest.raises(RetortError, match="trained from other"):
        _enqueue(round_, artifact)


def test_a_failed_generation_fails_the_job_and_has_no_outputs_to_read(fake_trainer, training_round, sent, monkeypatch):
    monkeypatch.setenv("FAKE_GENERATOR_FAIL", "1")
    round_, _, _ = training_round
    job = generation_job_run(job_id=_enqueue(round_).pk)
    assert (job.status, job.exit_code) == ("failed", 1)
    assert "fake generation failure" in job.error
    with pytest.raises(RetortError, match="not succeeded"):
        list(generation_outputs(job_id=job.pk))


def test_a_retry_generates_only_the_prompts_still_unanswered(fake_trainer, training_round, sent):
    round_, _, _ = training_round
    queued = _enqueue(round_)
    GenerationItem.objects.filter(job=queued, key="answer:7:0").update(text="kept from the first attempt", tokens=5)
    job = generation_job_run(job_id=queued.pk)
    assert job.status == "succeeded"
    sent_prompts = Path(job.input_path).read_text()
    assert "Name a colour." not in sent_prompts and "Name a fruit." in sent_prompts
    assert next(generation_outputs(job_id=job.pk)).text == "kept from the first attempt"


def test_a_cancelled_generation_never_runs(fake_trainer, training_round, sent):
    round_, _, _ = training_round
    queued = _enqueue(round_)
    assert generation_job_cancel(job_id=queued.pk).status == "cancelled"
    assert generation_job_run(job_id=queued.pk) is None


def test_a_database_that_drops_the_last_writes_once_each_still_stores_every_answer(
    fake_trainer, training_round, sent, monkeypatch
):
    from apps.training import running

    round_, _, _ = training_round
    names = ("generation_job_beat", "generation_outputs_store", "generation_job_finish")
    refused = refuse_first_calls(monkeypatch, running, names)
    job = generation_job_run(job_id=_enqueue(round_).pk)
    assert sorted(refused) == sorted(names)
    assert (job.status, job.done_count, job.attempts) == ("succeeded", 3, 1)
    assert [o.text for o in generation_outputs(job_id=job.pk)] == [f"echo: {p}" for _, p in PROMPTS]
