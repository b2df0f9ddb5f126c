"""Recipes: each is a list of stages per round (`stages(config, round_index) -> [StageSpec]`).

A recipe reads the experiment's frozen config (the dict `ExperimentConfig.to_dict()` gives) and names its
stages, their kinds and parameters; the kinds live in apps/experiments/stages. Adding a recipe means
writing that list (and, at most, one new stage kind) and registering it below.
"""

from apps.experiments.models import Experiment, Round, StageRun
from apps.experiments.recipes import lion, mos, step_by_step, tapir
from apps.experiments.recipes.spec import StageSpec

RECIPES = {"lion": lion, "step_by_step": step_by_step, "mos": mos, "tapir": tapir}


def _recipes():
    return RECIPES


def stages_for(config: dict, round_index: int) -> list[StageSpec]:
    recipes = _recipes()
    recipe = config.get("recipe")
    if recipe not in recipes:
        raise ValueError(f"Recipe {recipe!r} has no stages yet; available: {', '.join(sorted(recipes))}.")
    from apps.experiments.evaluation import with_evaluation

    # Every recipe's round is evaluated after its training when the config names an eval set.
    return with_evaluation(config, recipes[recipe].stages(config, round_index), recipes[recipe])


def round_create(*, experiment: Experiment, index: int) -> Round:
    """A round and its stage runs, as the recipe lists them (once: a second call returns the round)."""
    round_, created = Round.objects.get_or_create(experiment=experiment, index=index)
    if created:
        StageRun.objects.bulk_create(
            [
                StageRun(round=round_, position=n, name=spec.name, kind=spec.kind, params=spec.params)
                for n, spec in enumerate(stages_for(experiment.config, index))
            ]
        )
    return round_


def recipe_start(*, experiment: Experiment) -> None:
    """What a recipe sets up before round 1 (Lion: the train and cache pools from the seed pool)."""
    recipes = _recipes()
    setup = getattr(recipes.get(experiment.recipe), "setup", None)
    if setup is not None:
        setup(experiment)
