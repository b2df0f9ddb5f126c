from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import RetortError
from apps.experiments.config import ConfigError, parse_config, resolve_config
from apps.experiments.estimates import estimate_round_one
from apps.experiments.models import Experiment
from apps.experiments.services import experiment_create


class Command(BaseCommand):
    help = (
        "Create an experiment from a YAML or JSON config (the same name with the same config is a no-op). "
        "With --estimate, print round 1's calls, tokens and cost per stage and create nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--config", required=True, help="Path to the experiment's YAML or JSON config.")
        parser.add_argument("--estimate", action="store_true", help="Estimate round 1 only; create and pay nothing.")

    def handle(self, config, estimate, **options):
        path = Path(config)
        if not path.is_file():
            raise CommandError(f"No config file at {path}.")
        try:
            parsed = parse_config(path.read_bytes(), filename=str(path))
            if estimate:
                self._estimate(resolve_config(parsed))
                return
            existed = Experiment.objects.filter(name=parsed.name, config_hash=parsed.hash).first()
            experiment = experiment_create(config=parsed)
        except ConfigError as exc:
            raise CommandError(f"{path}: the config has problems:\n{exc}") from exc
        except (RetortError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if existed is not None:
            self.stdout.write(
                f"Experiment {experiment.name} (#{experiment.pk}) already exists with this config; nothing changed."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created experiment {experiment.name} (#{experiment.pk}, {experiment.recipe}, config "
                f"{experiment.config_hash[:12]}). Run it with: python manage.py run_experiment {experiment.name}"
            )
        )

    def _estimate(self, resolved) -> None:
        try:
            rows = estimate_round_one(resolved)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        header = (
            f"{'stage':<15} {'role':<10} {'calls':>8} {'in ledger':>10} {'prompt tok':>11} {'exp. tok':>10} "
            f"{'exp. $':>10} {'max $':>10}"
        )
        self.stdout.write(f"Round 1 of {resolved.config.name} ({resolved.config.recipe}), before anything is paid:")
        self.stdout.write(header)
        total = {
            "calls": 0,
            "in_ledger": 0,
            "prompt_tokens": 0,
            "expected_tokens": 0,
            "expected_cost": 0,
            "max_cost": 0,
        }
        for row in rows:
            self.stdout.write(
                f"{row.stage:<15} {row.role:<10} {row.calls:>8,} {row.in_ledger:>10,} {row.prompt_tokens:>11,} "
                f"{row.expected_tokens:>10,} {row.expected_cost:>10.4f} {row.max_cost:>10.4f}"
                + (f"  {row.note}" if row.note else "")
            )
            for key in total:
                total[key] += getattr(row, key)
        self.stdout.write(
            f"{'total':<15} {'':<10} {total['calls']:>8,} {total['in_ledger']:>10,} {total['prompt_tokens']:>11,} "
            f"{total['expected_tokens']:>10,} {total['expected_cost']:>10.4f} {total['max_cost']:>10.4f}"
        )
        self.stdout.write("Requests the ledger already holds cost nothing; later rounds depend on what round 1 finds.")
