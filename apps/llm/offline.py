"""Run an offline endpoint's pending calls: look up what its dataset records, let the backend answer,
record the results through the same Recorder as API calls (contracts, fresh samples, review queue).

Offline backends match a request to the dataset by the `instruction` and `input` variables it was built
from (the same content hash the importer uses). The embedding model loads on the worker at first use.
"""

import os
import time
from collections import defaultdict
from pathlib import Path

from django.conf import settings

from apps.datasets.formats.records import content_hash
from apps.datasets.models import Instruction
from apps.llm import conf
from apps.llm.budget import BudgetGate
from apps.llm.models import ClassifierVersion, LLMCall, LLMEndpoint
from apps.llm.running import Heartbeat, PendingFeed, Recorder, RunSummary, flight_from_row, refuse
from apps.llm.selectors import endpoint_config, llm_experiment
from workers.classify.retrain import head_sha256
from workers.classify.task_classifier import TaskHead
from workers.llm.offline import Reference
from workers.llm.offline.backends import (
    OfflineItem,
    ReplayBackend,
    ReserveItem,
    RetrievalGenerator,
    SimilarityJudge,
    _failed,
)
from workers.llm.offline.classifier import LocalTaskClassifier, labelled_questions, train_head
from workers.llm.offline.embeddings import MiniLMEmbedder
from workers.llm.offline.novelty import default_novelty_filter

# Reserve embeddings per dataset state, kept for the life of the worker process.
_RESERVE_CACHE: dict[tuple, tuple[list[ReserveItem], object]] = {}
# The local task classifier's heads: the shipped one, trained once per worker process (per set of training
# files), and retrained versions, loaded once per version (by the sha256 the request's key names).
_HEADS: dict[tuple[str, ...], tuple[object, str]] = {}
MAX_HEADS = 4


class HeadUnavailable(Exception):
    """The classifier version a request names cannot be loaded on this worker."""


def classifier_embedder() -> MiniLMEmbedder:
    """The embedder the local classifier reads tasks with (the model loads once per worker process)."""
    return MiniLMEmbedder()


def classifier_training_files() -> list[Path]:
    """The labelled questions the local classifier's head learns from: RETORT_CLASSIFIER_DATA (paths joined
    by the OS path separator), else the MT-Bench questions shipped in demo_data."""
    raw = getattr(settings, "RETORT_CLASSIFIER_DATA", None) or os.environ.get("RETORT_CLASSIFIER_DATA", "")
    if raw:
        return [Path(p) for p in (raw if isinstance(raw, list | tuple) else str(raw).split(os.pathsep)) if p]
    return [Path(settings.BASE_DIR) / "demo_data" / "mt_bench_questions.jsonl"]


def _keep_head(key: tuple[str, ...], head, name: str) -> None:
    while len(_HEADS) >= MAX_HEADS:
        _HEADS.pop(next(iter(_HEADS)))
    _HEADS[key] = (head, name)


def _version_head(head_sha: str):
    """The head of the ready classifier version whose files hash to `head_sha`, checked against its files."""
    version = ClassifierVersion.objects.filter(sha256=head_sha, status=ClassifierVersion.Status.READY).first()
    if version is None:
        raise HeadUnavailable(
            f"No ready local classifier version has the head {head_sha[:12]}… that the request names."
        )
    path = Path(settings.MEDIA_ROOT) / version.path
    try:
        found = head_sha256(path)
    except OSError as exc:
        raise HeadUnavailable(f"The head of classifier version {version.pk} is not readable at {path}: {exc}") from None
    if found != head_sha:
        raise HeadUnavailable(
            f"The head files of classifier version {version.pk} at {path} changed since they were saved."
        )
    name = (
        f"version {version.pk}: logistic head on {version.examples} labelled tasks "
        f"({version.review_examples} from reviewers)"
    )
    return TaskHead.load(path), name


def local_classifier(embedder, head_sha: str = "") -> LocalTaskClassifier:
    """The classifier a request asks for: the retrained version whose head hashes to `head_sha` (the key of
    requests built once a version is ready, see selectors.llm_endpoint_identity), else the head trained
    on the shipped labelled files. Raises HeadUnavailable when the named version cannot be loaded."""
    if head_sha:
        key = ("version", head_sha)
        if key not in _HEADS:
            _keep_head(key, *_version_head(head_sha))
    else:
        files = classifier_training_files()
        key = tuple(str(p) for p in files)
        if key not in _HEADS:
            for stale in [k for k in _HEADS if k[0] != "version"]:  # one shipped head: the current files'
                del _HEADS[stale]
            examples = labelled_questions(files)
            _keep_head(key, train_head(embedder, examples), f"logistic head on {len(examples)} labelled questions")
    head, name = _HEADS[key]
    return LocalTaskClassifier(embedder, head, name=f"{embedder.name} + {name}")


def _reference_key(request) -> str:
    return content_hash(str(request.vars.get("instruction", "")), str(request.vars.get("input", "")))


def _references(dataset_id: int, flights) -> dict[int, Reference]:
    keys = {f.call_id: _reference_key(f.request) for f in flights}
    found = {
        h: Reference(output, label, category)
        for h, output, label, category in Instruction.objects.filter(
            dataset_id=dataset_id, content_hash__in=set(keys.values())
        ).values_list("content_hash", "reference_output", "gold_label", "task_category")
    }
    return {call_id: found[h] for call_id, h in keys.items() if h in found}


def _reserve(dataset_id: int, embedder) -> tuple[list[ReserveItem], object]:
    state = Instruction.objects.filter(dataset_id=dataset_id).order_by("-id").values_list("id", flat=True).first()
    key = (dataset_id, state)
    if key not in _RESERVE_CACHE:
        items = [
            ReserveItem(text if not extra else f"{text}\n\n{extra}", category)
            for text, extra, category in Instruction.objects.filter(dataset_id=dataset_id)
            .order_by("id")
            .values_list("text", "input", "task_category")
            .iterator(2000)
        ]
        _RESERVE_CACHE.clear()
        _RESERVE_CACHE[key] = (items, embedder.encode([i.text for i in items]))
    return _RESERVE_CACHE[key]


def _seen_texts(experiment_id: int | None) -> list[str]:
    """Everything an experiment has already seen: its seed pool, the instructions it generated, and the
    generator replies it used from the ledger."""
    experiment = llm_experiment(experiment_id) if experiment_id is not None else None
    if experiment is None:
        return []
    texts = list(Instruction.objects.filter(dataset_id=experiment["dataset_id"]).values_list("text", flat=True))
    texts += Instruction.objects.filter(created_in_round__experiment_id=experiment_id).values_list("text", flat=True)
    for parsed in LLMCall.objects.filter(
        uses__experiment_id=experiment_id, status=LLMCall.Status.OK, parsed__has_key="text"
    ).values_list("parsed", flat=True):
        texts.append(parsed["text"])
    return texts


class _Backends:
    def __init__(self, endpoint: LLMEndpoint):
        self.endpoint = endpoint
        self._generators: dict[int | None, RetrievalGenerator] = {}
        self._embedder = None
        self._fixed = None
        self._classifiers: dict[str, LocalTaskClassifier] = {}

    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = classifier_embedder()
        return self._embedder

    def _classify(self, items: list[OfflineItem]):
        """Each request is answered by the head its key names (none: the shipped one)."""
        by_head = defaultdict(list)
        for item in items:
            by_head[str(item.request.identity.get("head") or "")].append(item)
        results = {}
        for head_sha, group in by_head.items():
            try:
                if head_sha not in self._classifiers:
                    self._classifiers[head_sha] = local_classifier(self.embedder, head_sha)
                answered = self._classifiers[head_sha].answer(group)
            except HeadUnavailable as exc:
                # Stops the endpoint with the reason: its calls wait, pending, until the head is back.
                answered = [_failed(item, str(exc), fatal=True) for item in group]
            results.update((result.key, result) for result in answered)
        return [results[item.key] for item in items]

    def answer(self, items: list[OfflineItem], experiment_of: dict[int, int | None]):
        kind = self.endpoint.backend
        if kind == LLMEndpoint.Backend.REPLAY:
            return ReplayBackend().answer(items)
        if kind == LLMEndpoint.Backend.LOCAL_CLASSIFIER:
            return self._classify(items)
        if kind == LLMEndpoint.Backend.SIMILARITY_JUDGE:
            self._fixed = self._fixed or SimilarityJudge(self.embedder)
            return self._fixed.answer(items)
        # Retrieval: what counts as "seen" differs per experiment, so each gets its own generator.
        by_experiment = defaultdict(list)
        for item in items:
            by_experiment[experiment_of[item.key]].append(item)
        results = {}
        for experiment_id, group in by_experiment.items():
            if experiment_id not in self._generators:
                reserve, vectors = _reserve(self.endpoint.offline_dataset_id, self.embedder)
                self._generators[experiment_id] = RetrievalGenerator(
                    reserve, self.embedder, default_novelty_filter(), seen=_seen_texts(experiment_id), vectors=vectors
                )
            for result in self._generators[experiment_id].answer(group):
                results[result.key] = result
        return [results[item.key] for item in items]


def run_offline_endpoint(endpoint: LLMEndpoint, *, owner: str, max_run_s: float | None = None) -> RunSummary:
    config = endpoint_config(endpoint)
    summary = RunSummary()
    budget = BudgetGate(config)
    recorder = Recorder(endpoint, config, budget, summary)
    feed = PendingFeed(endpoint.pk)
    heartbeat = Heartbeat(endpoint.pk, owner, conf.lease_seconds())
    backends = _Backends(endpoint)
    deadline = time.monotonic() + max_run_s if max_run_s else None
    rescanned = False
    needs_dataset = endpoint.backend != LLMEndpoint.Backend.LOCAL_CLASSIFIER
    if needs_dataset and endpoint.offline_dataset_id is None:
        recorder.stop_endpoint(f"Paused LLM calls: offline endpoint '{endpoint.name}' has no dataset set.")
        return summary
    while heartbeat.beat():
        if deadline is not None and time.monotonic() > deadline:
            summary.more_work = True
            break
        rows = feed.next(conf.offline_chunk())
        if not rows:
            if rescanned:
                break
            feed.cursor, rescanned = 0, True
            continue
        rescanned = False
        flights = {}
        for row in rows:
            flight, admission = flight_from_row(row, budget, feed.held())
            if flight is not None:
                flights[flight.call_id] = flight
            elif admission is not None:
                refuse(feed, summary, admission)
        if not flights:
            continue
        references = _references(endpoint.offline_dataset_id, flights.values()) if needs_dataset else {}
        items = [OfflineItem(f.call_id, f.request, references.get(f.call_id)) for f in flights.values()]
        # What a generator has "seen" is the experiment's it is charged to.
        experiment_of = {f.call_id: f.payer.experiment_id if f.payer else None for f in flights.values()}
        results = backends.answer(items, experiment_of)
        summary.sent += len(items)
        if recorder.record(results, flights):
            break
    else:
        summary.stopped = "lost the endpoint lease to another runner"
    return summary
