"""What a dataset's licence text says about using the data: pure string rules, no Django.

Licences are recorded as people write them ("CC BY-NC 4.0 (data)", "MIT (SVAMP); Apache-2.0 (rationales)"),
so the test is on words, not on a fixed list of SPDX ids. It errs towards warning: a false alarm costs a
reading of the licence, a missed restriction costs more.
"""

import re

NON_COMMERCIAL = "non-commercial"
NO_DERIVATIVES = "no derivatives"
SHARE_ALIKE = "share-alike"
UNKNOWN = "no licence recorded"

_RULES = (
    (NON_COMMERCIAL, re.compile(r"(\bNC\b|non[- ]?commercial|research[- ](use[- ])?only|academic[- ]use)", re.I)),
    (NO_DERIVATIVES, re.compile(r"(\bND\b|no[- ]?deriv)", re.I)),
    (SHARE_ALIKE, re.compile(r"(\bSA\b|share[- ]?alike|\bA?GPL)", re.I)),
)

WHAT_IT_MEANS = {
    NON_COMMERCIAL: "may be used for non-commercial purposes only (a model trained on it inherits that doubt)",
    NO_DERIVATIVES: "may not be changed or built upon, which training and filtering arguably do",
    SHARE_ALIKE: "derived data must be shared under the same licence",
    UNKNOWN: "has no licence recorded; find out before sharing or training on it",
}


def licence_restrictions(text: str) -> list[str]:
    """The restrictions a licence text names, in a fixed order; [UNKNOWN] for a blank one."""
    if not (text or "").strip():
        return [UNKNOWN]
    return [name for name, pattern in _RULES if pattern.search(text)]


def licence_warning(name: str, text: str) -> str | None:
    """One sentence for a dataset whose licence restricts use, or None."""
    found = licence_restrictions(text)
    if not found:
        return None
    if found == [UNKNOWN]:
        return f"Dataset {name!r} {WHAT_IT_MEANS[UNKNOWN]}."
    meanings = "; ".join(f"{r}: it {WHAT_IT_MEANS[r]}" for r in found)
    return f"Dataset {name!r} is licensed {text.strip()!r} ({meanings})."
