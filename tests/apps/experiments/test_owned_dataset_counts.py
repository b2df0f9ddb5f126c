"""Category counts of an experiment's own dataset follow the categories its stages give: TAPIR's
expansions take their seed's category after they were stored (through instruction_category_set)."""

from collections import Counter

import pytest

from apps.datasets.models import Dataset, DatasetCategoryCount, Instruction
from apps.experiments.services import experiment_create, experiment_start
from tests.apps.experiments.conftest import drive
from tests.apps.experiments.test_tapir_round import tapir_config, tapir_dataset

pytestmark = pytest.mark.django_db


def test_tapir_expansions_are_counted_under_their_seeds_categories(llm_server):
    config = tapir_config(llm_server, tapir_dataset(), params={"rounds": 1})
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    assert experiment.status == "finished", experiment.status_reason
    owned = Dataset.objects.get(owner_experiment=experiment)
    truth = Counter(
        Instruction.objects.filter(dataset=owned).exclude(task_category="").values_list("task_category", flat=True)
    )
    assert sum(truth.values()) > 0, "no expansion took a category"
    counts = dict(DatasetCategoryCount.objects.filter(dataset=owned).values_list("category", "count"))
    assert counts == dict(truth)
    assert sum(counts.values()) <= owned.size == Instruction.objects.filter(dataset=owned).count()
