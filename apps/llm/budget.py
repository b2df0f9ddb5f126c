"""The budget gate: a call is sent only if the experiment it is charged to can afford its worst case.

A call is charged to one experiment: the first (oldest) use of it whose experiment is not held and can
afford it. Before the call goes out its cost is bounded from above: prompt tokens as counted (tiktoken or
the deliberately high approximation) plus the reply limit (max_tokens, or an assumed 1,024 when the request
sets none). An experiment can afford it if what it has spent, plus the bounds of its calls already in
flight, plus this bound stays within its budget in money and in tokens. A call no experiment can afford
holds those experiments, so a budget is never exceeded by this runner's calls; a call no experiment uses
(a script's) is free of budgets.

Spend is re-read from the ledger every few seconds, which picks up calls made by other runners of the
same experiment; two runners working one experiment at the same moment (rare: stages run one at a
time) could overshoot by at most the calls one of them has in flight.
"""

import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from apps.llm.selectors import experiment_spend, llm_experiment
from workers.llm import tokens
from workers.llm.requests import PreparedRequest
from workers.llm.types import EndpointConfig

REFRESH_S = 5.0


@dataclass(frozen=True)
class Use:
    """One use of a pending call, as the runner sees it."""

    id: int
    experiment_id: int
    stage: str


@dataclass(frozen=True)
class Reservation:
    usd: Decimal = Decimal(0)
    tokens: int = 0


FREE = Reservation()


@dataclass(frozen=True)
class Admission:
    payer: Use | None  # the use charged for the call; None for a call no experiment uses
    reservation: Reservation | None  # None: refused
    refusals: dict[int, tuple[str, str]]  # experiment id -> (stage, why it cannot afford the call)


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
            row = llm_experiment(experiment_id)
            if row is None or (row["budget_usd"] is None and row["budget_tokens"] is None):
                account = None
            else:
                spend = experiment_spend(experiment_id=experiment_id)
                account = _Account(row["budget_usd"], row["budget_tokens"], spend.usd, spend.tokens, time.monotonic())
            self._accounts[experiment_id] = account
        return account

    def admit(self, uses: list[Use], request: PreparedRequest) -> Admission:
        """Charge the call to the first of these uses (oldest first, held experiments already left out)
        whose experiment can afford it. No uses: a free call."""
        if not uses:
            return Admission(None, FREE, {})
        est = None
        refusals: dict[int, tuple[str, str]] = {}
        for use in uses:
            if use.experiment_id in refusals:
                continue
            account = self._account(use.experiment_id)
            if account is None:
                return Admission(use, FREE, {})
            est = est or tokens.estimate(request.messages, request.params, request.model)
            reason = self._refusal(use.experiment_id, account, est)
            if reason:
                refusals[use.experiment_id] = (use.stage, reason)
                continue
            usd = self.config.cost(est.prompt_tokens, est.max_completion_tokens)
            self._reserved_usd[use.experiment_id] += usd
            self._reserved_tokens[use.experiment_id] += est.max_tokens
            return Admission(use, Reservation(usd, est.max_tokens), {})
        return Admission(None, None, refusals)

    def _refusal(self, experiment_id: int, account: _Account, est) -> str:
        usd = self.config.cost(est.prompt_tokens, est.max_completion_tokens)
        if account.budget_usd is not None:
            committed = account.spent_usd + self._reserved_usd[experiment_id]
            if committed + usd > account.budget_usd:
                return (
                    f"Budget reached: spent ${account.spent_usd:.4f} of ${account.budget_usd:.4f}; "
                    f"the next call on {self.config.name} could cost up to ${usd:.4f}."
                )
        if account.budget_tokens is not None:
            committed = account.spent_tokens + self._reserved_tokens[experiment_id]
            if committed + est.max_tokens > account.budget_tokens:
                return (
                    f"Token budget reached: used {account.spent_tokens:,} of "
                    f"{account.budget_tokens:,} tokens; the next call on {self.config.name} "
                    f"could use up to {est.max_tokens:,}."
                )
        return ""

    def settle(self, payer: Use | None, reservation: Reservation, usd: Decimal, used_tokens: int) -> None:
        if payer is None or reservation is FREE:
            return
        experiment_id = payer.experiment_id
        self._reserved_usd[experiment_id] -= reservation.usd
        self._reserved_tokens[experiment_id] -= reservation.tokens
        account = self._accounts.get(experiment_id)
        if account:
            account.spent_usd += usd
            account.spent_tokens += used_tokens
