"""Metric curves stay a few hundred points however long the run; the job's status in one read."""

import pytest

from apps.training.models import TrainingJob, TrainingMetric
from apps.training.selectors import training_job_status, training_metric_curve, training_metric_table

pytestmark = pytest.mark.django_db


def _job(training_round):
    round_, snapshot, _ = training_round
    return TrainingJob.objects.create(round=round_, snapshot=snapshot, base_model="m", steps=10_000)


def test_a_long_curve_is_averaged_into_equal_buckets(training_round):
    job = _job(training_round)
    TrainingMetric.objects.bulk_create(
        [TrainingMetric(job=job, step=s, name="loss", value=float(s)) for s in range(1, 10_001)], batch_size=2000
    )
    curve = training_metric_curve(job_id=job.pk, name="loss", max_points=100)
    assert len(curve) == 100
    assert curve[0] == (100, pytest.approx(50.5))  # steps 1..100, their mean
    assert curve[-1] == (10_000, pytest.approx(9950.5))
    assert [step for step, _ in curve] == sorted(step for step, _ in curve)


def test_a_short_curve_comes_back_whole(training_round):
    job = _job(training_round)
    TrainingMetric.objects.bulk_create([TrainingMetric(job=job, step=s, name="lr", value=s / 10) for s in (1, 2, 3)])
    assert training_metric_curve(job_id=job.pk, name="lr") == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert training_metric_curve(job_id=job.pk, name="loss") == []


def test_the_table_and_status_show_the_latest_steps(training_round):
    job = _job(training_round)
    rows = [TrainingMetric(job=job, step=s, name="loss", value=1 / s) for s in range(1, 31)]
    rows += [TrainingMetric(job=job, step=30, name="eta_s", value=12.0)]
    TrainingMetric.objects.bulk_create(rows)
    names, table = training_metric_table(job_id=job.pk, last=3)
    assert names == ["eta_s", "loss"]
    assert table == [(30, [12.0, 1 / 30]), (29, [None, 1 / 29]), (28, [None, 1 / 28])]
    status = training_job_status(job_id=job.pk)
    assert (status["status"], status["loss"], status["eta_s"], status["is_finished"]) == ("queued", 1 / 30, 12.0, False)
