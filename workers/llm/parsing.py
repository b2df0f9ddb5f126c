"""Reply contracts and their parsers. Pure functions: text in, a parsed value or a ParseError out.

Contracts (what the prompt templates ask for):
- judge: the last two non-empty lines are `Score of Assistant 1: <n>` and `Score of Assistant 2: <n>`,
  scores on a 1-10 scale. Tolerated: any case, markdown emphasis and bullets, extra spaces, a trailing
  full stop, `7/10` and `7 out of 10`, and the two lines in either order.
- generator: the reply is the new instruction itself. Lion's filters reject it when it mentions the
  word "instruction", was cut by the length limit, has three words or fewer, or starts with punctuation;
  each filter can be switched off.
- rationale: reasoning that ends with `So the answer is <label>.` Also accepted, because real teachers
  write them: `The answer is <label>.` and `Answer: <label>`. A few-shot completion that runs on into
  the next example is cut at the example's marker first. The parser is the one in
  workers.algorithms.step_by_step.rationales; this module only turns its problems into ParseErrors.
- classifier: the reply holds `<answer>Category</answer>` (the last one counts), and may hold
  `<confidence>p</confidence>` with p in [0, 1] (the local classifier says how sure it is).

A reply that breaks its contract raises ParseError with a short machine-readable `code` and a message
for people. Callers never turn a failed parse into a default value.
"""

import re
import unicodedata
from dataclasses import asdict, dataclass

from workers.algorithms.step_by_step import rationales
from workers.algorithms.step_by_step.rationales import parse_rationale as step_by_step_rationale


class ParseError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# --- judge ----------------------------------------------------------------------------------------
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_SCORE_LINE = re.compile(
    rf"^score\s+(?:of|for)\s+assistant\s*#?\s*([12])\s*[:\uff1a=\-\u2013]?\s*({_NUMBER})"
    rf"(?:\s*(?:/|out\s+of)\s*({_NUMBER}))?\s*[.!]?$",
    re.IGNORECASE,
)
_EMPHASIS = re.compile(r"[*_`]+")
_LEADER = re.compile(r"^(?:[-+>#]+|\d+[.)])\s+")


@dataclass(frozen=True)
class JudgeScores:
    assistant_1: float
    assistant_2: float

    def as_json(self) -> dict:
        return asdict(self)


def _clean_line(line: str) -> str:
    line = _EMPHASIS.sub("", line).strip()
    line = _LEADER.sub("", line)
    return re.sub(r"\s+", " ", line).strip()


def parse_judge(text: str, *, scale: float = 10.0) -> JudgeScores:
    lines = [_clean_line(line) for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) < 2:
        raise ParseError("judge_missing_scores", "The reply does not end with the two score lines.")
    scores: dict[str, float] = {}
    for line in lines[-2:]:
        match = _SCORE_LINE.match(line)
        if not match:
            raise ParseError(
                "judge_missing_scores",
                f"Expected 'Score of Assistant N: <number>' on the last two lines; got {line[:80]!r}.",
            )
        which, value, out_of = match.groups()
        if out_of is not None and float(out_of) != scale:
            raise ParseError("judge_bad_scale", f"Score given out of {out_of}, expected out of {scale:g}.")
        score = float(value)
        if not 0 <= score <= scale:
            raise ParseError("judge_out_of_range", f"Score {value} is outside 0-{scale:g}.")
        if which in scores:
            raise ParseError("judge_missing_scores", f"Assistant {which} is scored twice.")
        scores[which] = score
    return JudgeScores(scores["1"], scores["2"])


# --- generator ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorFilters:
    reject_mentions_instruction: bool = True
    reject_truncated: bool = True
    reject_short: bool = True
    max_short_words: int = 3
    reject_leading_punctuation: bool = True

    @classmethod
    def from_json(cls, data: dict | None) -> "GeneratorFilters":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (data or {}).items() if k in fields})


@dataclass(frozen=True)
class GeneratedInstruction:
    text: str

    def as_json(self) -> dict:
        return asdict(self)


# Straight, curly and angle quotes (written as escapes so the source stays ASCII).
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb"}


def _strip_quotes(text: str) -> str:
    while len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def parse_generated_instruction(
    text: str, *, finish_reason: str = "", filters: GeneratorFilters | None = None
) -> GeneratedInstruction:
    filters = filters or GeneratorFilters()
    cleaned = _strip_quotes((text or "").strip())
    if not cleaned:
        raise ParseError("generator_empty", "The reply is empty.")
    if filters.reject_truncated and finish_reason == "length":
        raise ParseError("generator_truncated", "The reply was cut by the length limit.")
    if filters.reject_mentions_instruction and "instruction" in cleaned.lower():
        raise ParseError("generator_mentions_instruction", "The reply talks about 'instruction' instead of being one.")
    if filters.reject_short and len(cleaned.split()) <= filters.max_short_words:
        raise ParseError("generator_too_short", f"The reply has {filters.max_short_words} words or fewer.")
    if filters.reject_leading_punctuation and unicodedata.category(cleaned[0]).startswith(("P", "S")):
        raise ParseError("generator_leading_punctuation", f"The reply starts with {cleaned[0]!r}.")
    return GeneratedInstruction(cleaned)


# --- rationale ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rationale:
    rationale: str
    label: str
    choice: str = ""  # the option letter, when the answer named one

    def as_json(self) -> dict:
        return asdict(self)


def parse_rationale(
    text: str,
    *,
    labels: list[str] | None = None,
    choices: list[str] | None = None,
    require_rationale: bool = True,
    dataset: str = "generic",
) -> Rationale:
    """`labels`: the allowed answers (e.g. entailment/neutral/contradiction); `choices`: the options of a
    multiple-choice question in order (a), (b), ...; with either, the answer must be one of them;
    `dataset` ("svamp", "anli", ...) applies that dataset's answer check (an arithmetic equation...). The
    parsing is workers.algorithms.step_by_step's, so a reply checked here and a completion turned into a
    training example there are read the same way."""
    if dataset not in rationales.DATASETS:
        raise ValueError(f"Unknown rationale dataset {dataset!r}; expected one of {', '.join(rationales.DATASETS)}.")
    parsed = step_by_step_rationale(
        dataset, text or "", labels=labels, choices=choices, require_rationale=require_rationale
    )
    if not parsed.ok:
        message = _RATIONALE_MESSAGES[parsed.problem]
        if parsed.problem == rationales.UNKNOWN_LABEL:
            message += f" Allowed: {', '.join(choices or labels or ())}."
        raise ParseError(parsed.code or "rationale_no_answer", message)
    if parsed.label is None:  # "So the answer is (c)." without choices to name: the letter is the answer
        return Rationale(parsed.rationale or "", f"({parsed.choice})", parsed.choice or "")
    return Rationale(parsed.rationale or "", parsed.label, parsed.choice or "")


_RATIONALE_MESSAGES = {
    rationales.NO_ANSWER: "No final 'So the answer is ...' statement naming an answer.",
    rationales.EMPTY_RATIONALE: "The reply gives an answer but no reasoning.",
    rationales.AMBIGUOUS: "The answer names more than one choice.",
    rationales.BAD_EQUATION: "The answer is not an arithmetic expression.",
    rationales.UNKNOWN_LABEL: "The answer is not one of the allowed answers.",
}


# --- classifier -----------------------------------------------------------------------------------
_ANSWER_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.IGNORECASE | re.DOTALL)


_CONFIDENCE_TAG = re.compile(r"<confidence>\s*(.*?)\s*</confidence>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float | None = None

    def as_json(self) -> dict:
        out = asdict(self)
        if self.confidence is None:  # most classifiers do not say; keep their parsed value as it was
            del out["confidence"]
        return out


def parse_classification(text: str, *, categories: list[str] | None = None) -> Classification:
    found = _ANSWER_TAG.findall(text or "")
    if not found:
        raise ParseError("classifier_no_tag", "The reply holds no <answer>…</answer>.")
    value = found[-1].strip().strip("\"'*.").strip()
    if not value:
        raise ParseError("classifier_empty", "The <answer> tag is empty.")
    if categories:
        allowed = {c.lower(): c for c in categories}
        if value.lower() not in allowed:
            raise ParseError("classifier_unknown_category", f"{value!r} is not one of {', '.join(categories)}.")
        value = allowed[value.lower()]
    return Classification(value, _confidence(text))


def _confidence(text: str) -> float | None:
    found = _CONFIDENCE_TAG.findall(text or "")
    if not found:
        return None
    try:
        value = float(found[-1])
    except ValueError:
        raise ParseError("classifier_bad_confidence", f"{found[-1]!r} is not a confidence.") from None
    if not 0.0 <= value <= 1.0:
        raise ParseError("classifier_bad_confidence", f"The confidence {value} is outside [0, 1].")
    return value
