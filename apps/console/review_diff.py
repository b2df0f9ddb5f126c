"""A word-level diff of two untrusted texts as escaped HTML with <ins> and <del>, for the rewrite queue."""

import difflib
import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# A word with the whitespace after it, so that the diff never splits a word and spacing is kept.
_TOKEN = re.compile(r"\S+\s*|\s+")
# Past this many tokens on either side the quadratic matcher is not worth it: both texts are shown whole.
MAX_TOKENS = 20_000


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text or "")


def word_diff(before: str, after: str) -> SafeString:
    """`before` → `after`: kept words as they are, removed ones in <del>, added ones in <ins>; every piece
    of text escaped."""
    a, b = tokens(before), tokens(after)
    if len(a) > MAX_TOKENS or len(b) > MAX_TOKENS:
        return mark_safe(f"<del>{escape(before)}</del><ins>{escape(after)}</ins>")  # noqa: S308 - escaped
    out: list[str] = []
    # autojunk off: in long answers common words ("the") would otherwise be treated as noise.
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(escape("".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{escape(''.join(b[j1:j2]))}</ins>")
    return mark_safe("".join(out))  # noqa: S308 - every piece above is escaped
