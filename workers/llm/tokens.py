"""Token counts and cost estimates before a call is made.

Where it applies (OpenAI model names that tiktoken knows) the count is exact, provided tiktoken's encoding
files are available on the machine: tiktoken fetches them on first use and caches them
(TIKTOKEN_CACHE_DIR). Everywhere else — other model families, whose tokenizers differ, or a machine
without the files — a documented approximation is used:

    tokens(text) = ceil(max(ascii_chars / 4, ascii_words * 4 / 3)) + non_ascii_chars

English prose averages about four characters or three quarters of a word per token in the GPT and
Llama families; taking the larger of the two guards against dense text (code, numbers), and counting
every non-ASCII character as a whole token over-counts CJK and accented text rather than under-counting
it. Chat formatting adds about 3 tokens per message and 3 to prime the reply. The approximation leans
high on purpose: budgets are checked against it before money is spent.
"""

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3
# Without a max_tokens in the request nothing bounds the reply; this stands in for the bound in budgets.
ASSUMED_MAX_COMPLETION = 1024
_WORD = re.compile(r"[A-Za-z0-9]+")


def approx_tokens(text: str) -> int:
    if not text:
        return 0
    ascii_text = text.encode("ascii", "ignore")
    non_ascii = len(text) - len(ascii_text)
    words = len(_WORD.findall(text)) if len(ascii_text) < 200_000 else len(ascii_text) // 5
    return math.ceil(max(len(ascii_text) / 4, words * 4 / 3)) + non_ascii


@lru_cache(maxsize=64)
def _encoding_for(model: str):
    """tiktoken's encoding for an OpenAI model, or None (unknown model, or files not available here).
    Remembered per process, so a machine without the files tries once, not on every call."""
    try:
        import tiktoken

        name = tiktoken.encoding_name_for_model(model)
    except (ImportError, KeyError):
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # noqa: BLE001 - tiktoken raises whatever its downloader raised; any failure means "not here"
        return None


def counting_method(model: str) -> str:
    encoding = _encoding_for(model)
    return f"tiktoken:{encoding.name}" if encoding is not None else "approximation"


def text_tokens(text: str, model: str = "") -> int:
    encoding = _encoding_for(model) if model else None
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return approx_tokens(text)


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: count the text parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def prompt_tokens(messages: list[dict], model: str = "") -> int:
    return sum(text_tokens(_content_text(m.get("content")), model) + MESSAGE_OVERHEAD for m in messages) + REPLY_PRIMING


def max_completion_tokens(params: dict) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        if params.get(key):
            return int(params[key])
    return ASSUMED_MAX_COMPLETION


@dataclass(frozen=True)
class Estimate:
    prompt_tokens: int
    max_completion_tokens: int
    expected_completion_tokens: int

    @property
    def max_tokens(self) -> int:
        return self.prompt_tokens + self.max_completion_tokens

    @property
    def expected_tokens(self) -> int:
        return self.prompt_tokens + self.expected_completion_tokens


def estimate(
    messages: list[dict], params: dict, model: str = "", *, expected_completion: float | None = None
) -> Estimate:
    """`expected_completion` is the mean reply length seen so far for this kind of call, if known;
    without it, half the reply limit is expected (a guess, marked as such where it is shown)."""
    bound = max_completion_tokens(params)
    expected = bound / 2 if expected_completion is None else min(bound, expected_completion)
    return Estimate(prompt_tokens(messages, model), bound, math.ceil(expected))


def cost(prompt: int, completion: int, price_in_per_mtok: Decimal, price_out_per_mtok: Decimal) -> Decimal:
    return (Decimal(prompt) * Decimal(price_in_per_mtok) + Decimal(completion) * Decimal(price_out_per_mtok)) / Decimal(
        1_000_000
    )
