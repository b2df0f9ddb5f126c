"""Check a reply against the contract its request carries.

The contract travels with the request (`PreparedRequest.contract`): `kind` picks the parser, the other
keys are its options (judge `scale`; generator `filters`; rationale `labels`/`choices`/`dataset`; classifier
`categories`) and `max_resamples`, how many fresh samples to ask for before a person has to look.
"""

from dataclasses import dataclass

from workers.llm.parsing import (
    GeneratorFilters,
    ParseError,
    parse_classification,
    parse_generated_instruction,
    parse_judge,
    parse_rationale,
)

DEFAULT_MAX_RESAMPLES = 2
KINDS = ("answer", "judge", "generator", "rationale", "classifier", "none")


@dataclass(frozen=True)
class ReplyCheck:
    valid: bool
    parsed: dict | None = None
    code: str = ""
    reason: str = ""


def max_resamples(contract: dict) -> int:
    return int(contract.get("max_resamples", DEFAULT_MAX_RESAMPLES))


def check_reply(contract: dict, content: str, finish_reason: str = "") -> ReplyCheck:
    kind = contract.get("kind", "none")
    try:
        if kind == "answer":
            if not content.strip():
                raise ParseError("answer_empty", "The reply is empty.")
            if finish_reason == "length" and not contract.get("accept_truncated"):
                raise ParseError("answer_truncated", "The reply was cut by the length limit.")
            return ReplyCheck(True)
        if kind == "judge":
            return ReplyCheck(True, parse_judge(content, scale=float(contract.get("scale", 10))).as_json())
        if kind == "generator":
            filters = GeneratorFilters.from_json(contract.get("filters"))
            return ReplyCheck(
                True, parse_generated_instruction(content, finish_reason=finish_reason, filters=filters).as_json()
            )
        if kind == "rationale":
            return ReplyCheck(
                True,
                parse_rationale(
                    content,
                    labels=contract.get("labels"),
                    choices=contract.get("choices"),
                    require_rationale=contract.get("require_rationale", True),
                    dataset=contract.get("dataset", "generic"),
                ).as_json(),
            )
        if kind == "classifier":
            parsed = parse_classification(content, categories=contract.get("categories"))
            return ReplyCheck(True, parsed.as_json())
        if kind == "none":
            return ReplyCheck(True)
    except ParseError as exc:
        return ReplyCheck(False, code=exc.code, reason=str(exc))
    raise ValueError(f"Unknown reply contract {kind!r}; expected one of {', '.join(KINDS)}.")
