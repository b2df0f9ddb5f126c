"""The three offline backends. Each takes a list of OfflineItems (a request plus what the offline dataset
records for its instruction) and returns one CallResult per item, in the reply contract the request asks
for. Token counts are the approximation from tokens.py; an offline call costs nothing.
"""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from workers.algorithms.novelty import NoveltyIndex
from workers.algorithms.task_vocabulary import UnknownTaskLabel, to_task_category
from workers.llm.offline import Reference
from workers.llm.offline.novelty import NoveltyFilter, normalise
from workers.llm.parsing import GeneratorFilters, ParseError, parse_generated_instruction
from workers.llm.prompts import task_text
from workers.llm.requests import PreparedRequest
from workers.llm.tokens import approx_tokens, prompt_tokens
from workers.llm.types import FAILED, FATAL, OK, CallResult

NO_RECORD = "No recorded answer for this instruction in the offline dataset."
NO_CATEGORY = "The offline dataset records no task category for this instruction."
NO_OUTPUT = "The offline dataset has this instruction but no recorded answer."
NO_REFERENCE = "No reference answer for this instruction in the offline dataset."
RESERVE_EXHAUSTED = "The reserve dataset has no unseen, novel instruction left."


@dataclass(frozen=True)
class OfflineItem:
    key: int
    request: PreparedRequest
    reference: Reference | None = None


def _ok(item: OfflineItem, content: str, started: float) -> CallResult:
    return CallResult(
        item.key,
        OK,
        content=content,
        finish_reason="stop",
        attempts=1,
        prompt_tokens=prompt_tokens(item.request.messages),
        completion_tokens=approx_tokens(content),
        latency_ms=int((time.perf_counter() - started) * 1000),
    )


def _failed(item: OfflineItem, reason: str, *, fatal: bool = False) -> CallResult:
    return CallResult(item.key, FATAL if fatal else FAILED, attempts=1, error=reason)


def _vocabulary_label(recorded: str) -> str:
    """A recorded category in the task vocabulary's spelling (MT-Bench's "coding" is Code Generation); one
    the vocabulary cannot place is replayed as recorded, so the classifier contract rejects it in plain view."""
    try:
        return to_task_category(recorded)
    except UnknownTaskLabel:
        return recorded


class ReplayBackend:
    """Answers with what the dataset recorded for the same instruction (matched on its text and input):
    the reference output for answers and rationales, the task category for the classifier. It cannot
    judge or invent instructions; asking it to is a configuration error and stops the stage."""

    kind = "offline_replay"

    def answer(self, items: Sequence[OfflineItem]) -> list[CallResult]:
        results = []
        for item in items:
            started = time.perf_counter()
            kind = item.request.contract.get("kind", "none")
            if kind in ("judge", "generator"):
                other = "similarity judge" if kind == "judge" else "retrieval generator"
                results.append(
                    _failed(item, f"The replay backend cannot act as a {kind}; use the {other}.", fatal=True)
                )
            elif item.reference is None:
                results.append(_failed(item, NO_RECORD))
            elif kind == "classifier":
                if item.reference.task_category:
                    label = _vocabulary_label(item.reference.task_category)
                    results.append(_ok(item, f"<answer>{label}</answer>", started))
                else:
                    results.append(_failed(item, NO_CATEGORY))
            elif item.reference.output:
                results.append(_ok(item, item.reference.output, started))
            else:
                results.append(_failed(item, NO_OUTPUT))
        return results


def similarity_to_score(similarity: float, floor: float) -> float:
    """Cosine similarity to a 1-10 score: `floor` and below (unrelated text) is 1, identical is 10."""
    scaled = (similarity - floor) / (1.0 - floor)
    return round(1.0 + 9.0 * min(1.0, max(0.0, scaled)), 1)


class SimilarityJudge:
    """Scores each of the two answers by the cosine similarity of its embedding to the embedding of the
    recorded reference answer, mapped linearly from [floor, 1] onto [1, 10]. Unrelated sentences score
    about 0-0.2 with all-MiniLM-L6-v2, hence the default floor. The reply explains the figures and ends
    with the judge contract's two score lines. Position cannot bias it, so both orders agree."""

    kind = "offline_similarity_judge"

    def __init__(self, embedder, *, floor: float = 0.2):
        self.embedder = embedder
        self.floor = floor

    def answer(self, items: Sequence[OfflineItem]) -> list[CallResult]:
        results: dict[int, CallResult] = {}
        usable = []
        for item in items:
            v = item.request.vars
            if item.request.contract.get("kind") != "judge":
                results[item.key] = _failed(item, "The similarity judge can only judge.", fatal=True)
            elif item.reference is None or not item.reference.output:
                results[item.key] = _failed(item, NO_REFERENCE)
            elif "answer_1" not in v or "answer_2" not in v:
                results[item.key] = _failed(item, "The request lacks the two answers (answer_1, answer_2).")
            else:
                usable.append(item)
        if usable:
            started = time.perf_counter()
            texts = []
            for item in usable:
                texts += [item.reference.output, item.request.vars["answer_1"], item.request.vars["answer_2"]]
            vectors = self.embedder.encode(texts).reshape(len(usable), 3, -1)
            for item, (ref, first, second) in zip(usable, vectors, strict=True):
                sim_1, sim_2 = float(ref @ first), float(ref @ second)
                score_1 = similarity_to_score(sim_1, self.floor)
                score_2 = similarity_to_score(sim_2, self.floor)
                model = getattr(self.embedder, "name", "embeddings")
                content = (
                    f"Offline similarity judge ({model}): cosine similarity to the reference answer is "
                    f"{sim_1:.3f} for Assistant 1 and {sim_2:.3f} for Assistant 2.\n\n"
                    f"Score of Assistant 1: {score_1:g}\nScore of Assistant 2: {score_2:g}"
                )
                results[item.key] = _ok(item, content, started)
        return [results[item.key] for item in items]


@dataclass(frozen=True)
class ReserveItem:
    text: str
    task_category: str = ""


class RetrievalGenerator:
    """Proposes, for each seed, the reserve instruction nearest to it in embedding space that has not
    been seen and passes the novelty filter and the generator contract's filters. Expansion requests
    that name a task type draw only from reserve items of that type when the reserve has any. A fresh
    sample (sample index k) takes the (k+1)-th acceptable candidate, and no candidate is given twice.

    With a filter that offers an index (the default ROUGE-L one), what was seen and the reserve are
    tokenised once, at the first pick, and each pick is added to the index; a plain filter callable is
    given the candidates and everything seen at every pick."""

    kind = "offline_retrieval"

    def __init__(
        self,
        reserve: Sequence[ReserveItem],
        embedder,
        novelty: NoveltyFilter,
        *,
        seen: Iterable[str] = (),
        chunk: int = 32,
        vectors: np.ndarray | None = None,
    ):
        self.reserve = list(reserve)
        self.embedder = embedder
        self.novelty = novelty
        self.chunk = chunk
        self.vectors = vectors if vectors is not None else embedder.encode([r.text for r in self.reserve])
        self.seen_texts = list(seen)
        self._seen_keys = {normalise(t) for t in self.seen_texts}
        self._index: NoveltyIndex | None = None  # built at the first pick, extended with each one

    def _novel(self, ids: list[int]) -> list[bool]:
        if not hasattr(self.novelty, "index"):  # a plain filter sees the texts each time
            return self.novelty([self.reserve[i].text for i in ids], self.seen_texts)
        if self._index is None:
            self._index = self.novelty.index(self.seen_texts, [r.text for r in self.reserve])
        return self._index.novel(ids)

    def _acceptable(self, text: str, filters: GeneratorFilters) -> bool:
        try:
            parse_generated_instruction(text, filters=filters)
        except ParseError:
            return False
        return True

    def _pick(self, seed_vector: np.ndarray, request: PreparedRequest) -> int | None:
        order = np.argsort(-(self.vectors @ seed_vector), kind="stable")
        wanted_type = str(request.vars.get("task_type") or "").lower()
        if wanted_type and any(r.task_category.lower() == wanted_type for r in self.reserve):
            order = [i for i in order if self.reserve[i].task_category.lower() == wanted_type]
        filters = GeneratorFilters.from_json(request.contract.get("filters"))
        to_skip = request.sample
        candidates = [i for i in order if normalise(self.reserve[i].text) not in self._seen_keys]
        for start in range(0, len(candidates), self.chunk):
            block = [
                i for i in candidates[start : start + self.chunk] if self._acceptable(self.reserve[i].text, filters)
            ]
            if not block:
                continue
            for i, novel in zip(block, self._novel(block), strict=True):
                if not novel or normalise(self.reserve[i].text) in self._seen_keys:
                    continue
                if to_skip:
                    to_skip -= 1
                    continue
                return i
        return None

    def answer(self, items: Sequence[OfflineItem]) -> list[CallResult]:
        results: dict[int, CallResult] = {}
        usable = []
        for item in items:
            if item.request.contract.get("kind") != "generator":
                results[item.key] = _failed(item, "The retrieval generator only proposes instructions.", fatal=True)
            else:
                usable.append(item)
        seeds = [
            item.request.vars.get("task")
            or task_text(str(item.request.vars.get("instruction", "")), str(item.request.vars.get("input", "")))
            for item in usable
        ]
        seed_vectors = self.embedder.encode(seeds) if usable else []
        for item, vector in zip(usable, seed_vectors, strict=True):
            started = time.perf_counter()
            picked = self._pick(vector, item.request)
            if picked is None:
                results[item.key] = _failed(item, RESERVE_EXHAUSTED)
                continue
            # What one seed got, no other seed gets: it is now part of what has been seen.
            text = self.reserve[picked].text
            self.seen_texts.append(text)
            self._seen_keys.add(normalise(text))
            if self._index is not None:
                self._index.add(picked)
            results[item.key] = _ok(item, text, started)
        return [results[item.key] for item in items]
