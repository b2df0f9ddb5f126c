"""What an experiment generates lives in a dataset it owns, which dataset lists and pickers leave out."""

import pytest

from apps.datasets.selectors import dataset_list
from apps.experiments.models import Experiment
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db


def test_owned_datasets_are_left_out_of_dataset_lists():
    seeds = DatasetFactory(name="seeds")
    experiment = Experiment.objects.create(name="e", recipe="lion", dataset=seeds)
    owned = DatasetFactory(name="e · generated", owner_experiment=experiment)
    assert list(dataset_list()) == [seeds]
    assert set(dataset_list(include_owned=True)) == {seeds, owned}
