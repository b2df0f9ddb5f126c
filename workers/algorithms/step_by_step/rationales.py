"""Rationale and label from a few-shot chain-of-thought completion.

A few-shot completion does not stop at the answer: it runs on into the next exemplar ("\n\nQ: ...",
"\n\nPremise: ..."). So a completion is first cut at the first blank line or next-exemplar marker, then the
last answer clause of what is left splits it into rationale and label:

- cqa:   "... So the answer is (d) math problem."   -> choice d, label "math problem"
- svamp: "... The answer is (84.0 / 2.0)."           -> label "(84.0 / 2.0)" (must be arithmetic)
- anli:  "... So the answer is neutral."             -> label "neutral"
- esnli: "...\nAnswer: entailment"                   -> label "entailment"
- generic: the project's own rationale prompts, "... So the answer is <label>." -> label "<label>"

Unlike the reference code, an answer that names two choices ("either (a) pond or (e) lake"), an SVAMP
equation that is truncated or not arithmetic, or an NLI label outside the three classes counts as
unparsed (with the reason) instead of yielding a wrong label. The SVAMP equation is everything after "The
answer is", so "(16 * 17) * 4" keeps its last factor.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from workers.algorithms.step_by_step.arithmetic import ArithmeticSyntaxError, evaluate
from workers.algorithms.step_by_step.inputs import NLI_LABELS

Dataset = Literal["cqa", "svamp", "anli", "esnli", "generic"]
DATASETS: tuple[Dataset, ...] = ("cqa", "svamp", "anli", "esnli", "generic")
_SO_THE_ANSWER_IS = re.compile(r"(?:,?\s*\bso\s+)?\bthe answer is\b", re.IGNORECASE)

_NEXT_EXEMPLAR = {
    "cqa": re.compile(r"\n\s*\n|\nQ:"),
    "svamp": re.compile(r"\n\s*\n|\nQ:"),
    "anli": re.compile(r"\n\s*\n|\nPremise:"),
    "esnli": re.compile(r"\n\s*\n|\nPremise:"),
    "generic": re.compile(r"\n\s*\n"),
}
# The answer clause, with what introduces it ("So", ", so") kept out of the rationale.
_ANSWER = {
    "cqa": _SO_THE_ANSWER_IS,
    "svamp": _SO_THE_ANSWER_IS,
    "anli": _SO_THE_ANSWER_IS,
    "esnli": re.compile(r"(?:^|\n)\s*answer:", re.IGNORECASE),
    "generic": _SO_THE_ANSWER_IS,
}
_CHOICE = re.compile(r"\(([a-z])\)")


@dataclasses.dataclass(frozen=True)
class ParsedRationale:
    rationale: str | None
    label: str | None  # choice text (cqa), equation (svamp) or class name (nli)
    choice: str | None = None  # cqa: the letter the teacher picked
    problem: str | None = None  # why it did not parse; None when it did

    @property
    def ok(self) -> bool:
        return self.problem is None


def _failed(problem: str, rationale: str | None = None) -> ParsedRationale:
    return ParsedRationale(rationale, None, None, problem)


def cut_completion(dataset: Dataset, completion: str) -> str:
    """The completion up to where the next few-shot exemplar begins."""
    found = _NEXT_EXEMPLAR[dataset].search(completion)
    return (completion[: found.start()] if found else completion).strip()


def parse_rationale(dataset: Dataset, completion: str) -> ParsedRationale:
    """Split one chain-of-thought completion into rationale and label."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    text = cut_completion(dataset, completion)
    clauses = list(_ANSWER[dataset].finditer(text))
    if not clauses:
        return _failed("no answer")
    clause = clauses[-1]
    rationale = text[: clause.start()].strip().rstrip(",").strip()
    answer = text[clause.end() :].strip()
    if not rationale:
        return _failed("empty rationale")
    if dataset == "cqa":
        return _cqa_label(rationale, answer)
    if dataset == "svamp":
        equation = answer.rstrip(".").strip()
        try:
            evaluate(equation)
        except ArithmeticSyntaxError:
            return _failed("unparsable equation", rationale)
        return ParsedRationale(rationale, equation)
    if dataset == "generic":
        text = answer.rstrip(".").strip()
        return ParsedRationale(rationale, text) if text else _failed("no answer", rationale)
    label = answer.rstrip(".").strip().lower()
    if label not in NLI_LABELS:
        return _failed("unknown label", rationale)
    return ParsedRationale(rationale, label)


def _cqa_label(rationale: str, answer: str) -> ParsedRationale:
    letters = _CHOICE.findall(answer)
    if len(set(letters)) > 1:
        return _failed("ambiguous answer", rationale)
    if not letters:
        text = answer.rstrip(".").strip()
        return ParsedRationale(rationale, text, None) if text else _failed("no answer", rationale)
    text = _CHOICE.split(answer, maxsplit=1)[2].strip().rstrip(".").strip()
    return ParsedRationale(rationale, text or None, letters[0])
