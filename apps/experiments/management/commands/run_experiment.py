import time

from django.core.management.base import BaseCommand, CommandError

from apps.experiments.cli import ProgressPrinter, ensure_workers
from apps.experiments.evaluation import evaluation_line
from apps.experiments.models import Evaluation, Experiment, Round, StageRun
from apps.experiments.selectors import experiment_progress
from apps.experiments.services import experiment_start
from apps.experiments.wake import wake

E = Experiment.Status
NUDGE_S = 30.0  # no change for this long: wake the engine again (a wake-up lost with a killed worker)


def reached(experiment: Experiment, until: str) -> bool:
    if experiment.status == E.FINISHED:
        return True
    stages = StageRun.objects.filter(round__experiment=experiment)
    if until == "review":
        if experiment.status in (E.WAITING_REVIEW, E.WAITING_APPROVAL):
            return True
        return stages.filter(kind="review_gate", status=StageRun.Status.DONE).exists()
    if until == "trained":
        return stages.filter(kind="train", status=StageRun.Status.DONE).exists()
    return False


class Command(BaseCommand):
    help = (
        "Run an experiment until it waits for review, has trained its first round, or is done; starts a "
        "Celery worker for its own duration when none consumes the queues."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--until", choices=["review", "trained", "done"], default="done")
        parser.add_argument(
            "--auto-approve", action="store_true", help="Decide review gates and approve training without a person."
        )
        parser.add_argument("--timeout", type=float, default=None, help="Give up after this many seconds.")
        parser.add_argument("--no-worker", action="store_true", help="Never start a worker (one is running).")

    def handle(self, name, until, auto_approve, timeout, no_worker, verbosity, **options):
        experiment = Experiment.objects.filter(name=name).first()
        if experiment is None:
            raise CommandError(f"No experiment named {name!r}; create it with create_experiment --config FILE.")
        if experiment.status in (E.FAILED, E.CANCELLED):
            raise CommandError(f"Experiment {name} is {experiment.status}: {experiment.status_reason}")
        queues = ["default", "llm"]
        if auto_approve or until != "review" or experiment.student_endpoint_id is None:
            queues.append("gpu")
        workers = [] if no_worker else ensure_workers(queues)
        for worker in workers:
            self.stderr.write(f"Started a worker for {', '.join(worker.queues)} (log: {worker.log_path})")
        printer = ProgressPrinter(self.stderr, self.stderr.isatty())
        try:
            experiment_start(experiment_id=experiment.pk, auto_approve=True if auto_approve else None)
            self._wait(experiment, until, printer, timeout, workers)
        finally:
            printer.end()
            for worker in workers:
                worker.stop()

    def _wait(self, experiment, until, printer, timeout, workers) -> None:
        started = changed_at = time.monotonic()
        last, told, reported = None, False, set()
        while True:
            progress = experiment_progress(experiment_id=experiment.pk)
            experiment = progress["experiment"]
            self._report_evaluations(experiment, printer, reported)
            printer.show(progress)
            if reached(experiment, until):
                printer.end()
                self.stdout.write(
                    self.style.SUCCESS(f"{experiment.name}: {experiment.get_status_display()} ({until} reached).")
                )
                return
            if experiment.status in (E.FAILED, E.CANCELLED):
                raise CommandError(f"Experiment {experiment.name} {experiment.status}: {experiment.status_reason}")
            if experiment.status == E.PAUSED:
                raise CommandError(f"Experiment {experiment.name} is paused: {experiment.status_reason}")
            if experiment.status in (E.WAITING_REVIEW, E.WAITING_APPROVAL) and not told:
                printer.end()
                self.stderr.write(
                    "Waiting for a person: decide the open review tasks or approve the round "
                    "(or run with --auto-approve)."
                )
                told = True
            for worker in workers:
                if not worker.alive():
                    raise CommandError(f"The worker this command started exited; see {worker.log_path}")
            state = (
                experiment.status,
                progress["stage"] and (progress["stage"].pk, progress["stage"].phase, progress["stage"].done),
            )
            now = time.monotonic()
            if state != last:
                last, changed_at = state, now
            elif now - changed_at > NUDGE_S:
                wake(experiment.pk)
                changed_at = now
            if timeout is not None and now - started > timeout:
                raise CommandError(
                    f"Gave up after {timeout:g} s; the experiment is {experiment.status} and goes on when run again."
                )
            time.sleep(0.5)

    def _report_evaluations(self, experiment, printer, reported: set) -> None:
        """Each finished round's evaluation, once, as the round finishes."""
        finished = Evaluation.objects.filter(experiment=experiment, round__status=Round.Status.FINISHED)
        for evaluation in finished.exclude(pk__in=reported).select_related("round").order_by("round__index", "pk"):
            printer.end()
            self.stdout.write(evaluation_line(evaluation))
            reported.add(evaluation.pk)
