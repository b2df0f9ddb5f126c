"""The budget gate: a call is sent only if the experiment can afford its worst case.

Before a call goes out, its cost is bounded from above: prompt tokens as counted (tiktoken or the
deliberately high approximation) plus the reply limit (max_tokens, or an assumed 1,024 when the request
sets none). The call is admitted only if what the experiment has spent, plus the bounds of its calls
already in flight, plus this bound stays within the budget in money and in tokens. The first call that
does not fit pauses the experiment, so a budget is never exceeded by this runner's calls.

Spend is re-read from the ledger every few seconds, which picks up calls made by other runners of the
same experiment; two runners working one experiment at the same moment (rare: stages run one at a
time) could overshoot by at most the calls one of them has in flight.
"""

import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from apps.experiments.models import Experiment
from apps.llm.selectors import experiment_spend
from workers.llm import tokens
from workers.llm.requests import PreparedRequest
from workers.llm.types import EndpointConfig

REFRESH_S = 5.0


@dataclass(frozen=True)
class Reservation:
    usd: Decimal = Decimal(0)
    tokens: int = 0


FREE = Reservation()


@dataclass
class _Account:
    budget_usd: Decimal | None
    budget_tokens: int | None
    spent_usd: Decimal
    spent_tokens: int
    loaded_at: float


class BudgetGate:
    def __init__(self, config: EndpointConfig):
        self.config = config
        self._accounts: dict[int, _Account | None] = {}
        self._reserved_usd: dict[int, Decimal] = defaultdict(Decimal)
        self._reserved_tokens: dict[int, int] = defaultdict(int)

    def _account(self, experiment_id: int) -> _Account | None:
        account = self._accounts.get(experiment_id, False)
        if account is False or (account is not None and time.monotonic() - account.loaded_at > REFRESH_S):
            row = Experiment.objects.filter(pk=experiment_id).values("budget_usd", "budget_tokens").first()
            if row is None or (row["budget_usd"] is None and row["budget_tokens"] is None):
                account = None
            else:
                spend = experiment_spend(experiment_id=experiment_id)
                account = _Account(row["budget_usd"], row["budget_tokens"], spend.usd, spend.tokens, time.monotonic())
            self._accounts[experiment_id] = account
        return account

    def admit(self, experiment_id: int | None, request: PreparedRequest) -> tuple[Reservation | None, str]:
        """(reservation, "") when the call may go, (None, reason) when it would risk the budget."""
        if experiment_id is None:
            return FREE, ""
        account = self._account(experiment_id)
        if account is None:
            return FREE, ""
        est = tokens.estimate(request.messages, request.params, request.model)
        usd = self.config.cost(est.prompt_tokens, est.max_completion_tokens)
        if account.budget_usd is not None:
            committed = account.spent_usd + self._reserved_usd[experiment_id]
            if committed + usd > account.budget_usd:
                return None, (
                    f"Budget reached: spent ${account.spent_usd:.4f} of ${account.budget_usd:.4f}; "
                    f"the next call on {self.config.name} could cost up to ${usd:.4f}."
                )
        if account.budget_tokens is not None:
            committed = account.spent_tokens + self._reserved_tokens[experiment_id]
            if committed + est.max_tokens > account.budget_tokens:
                return None, (
                    f"Token budget reached: used {account.spent_tokens:,} of "
                    f"{account.budget_tokens:,} tokens; the next call on {self.config.name} "
                    f"could use up to {est.max_tokens:,}."
                )
        self._reserved_usd[experiment_id] += usd
        self._reserved_tokens[experiment_id] += est.max_tokens
        return Reservation(usd, est.max_tokens), ""

    def settle(self, experiment_id: int | None, reservation: Reservation, usd: Decimal, used_tokens: int) -> None:
        if experiment_id is None or reservation is FREE:
            return
        self._reserved_usd[experiment_id] -= reservation.usd
        self._reserved_tokens[experiment_id] -= reservation.tokens
        account = self._accounts.get(experiment_id)
        if account:
            account.spent_usd += usd
            account.spent_tokens += used_tokens
