"""A strict checker of the OpenAI chat fine-tuning format. Pure Python: no Django here.

The rules, per file: UTF-8 (no byte-order mark), one JSON object per line, every line ending in a newline,
no blank lines, at least one example. Per example: exactly the key `messages`, a list of objects with
exactly `role` and `content` (an assistant message may add `weight`, 0 or 1); roles are system, user and
assistant; at most one system message, and only first; then user and assistant alternate, user first,
ending with the assistant; every content is a non-empty string that is not only whitespace.
"""

from dataclasses import dataclass
from pathlib import Path

import orjson

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class FormatProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def check_example(obj) -> str | None:
    """What is wrong with one decoded example, or None."""
    if not isinstance(obj, dict):
        return "the line is not a JSON object"
    if set(obj) != {"messages"}:
        extra = sorted(set(obj) - {"messages"})
        return f"unexpected keys {extra}" if "messages" in obj else "no 'messages' key"
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    expected = "user"
    for n, message in enumerate(messages, start=1):
        where = f"message {n}"
        if not isinstance(message, dict):
            return f"{where} is not an object"
        role = message.get("role")
        allowed = {"role", "content", "weight"} if role == "assistant" else {"role", "content"}
        if not set(message) <= allowed or not {"role", "content"} <= set(message):
            return f"{where} must have exactly 'role' and 'content' (got {sorted(message)})"
        if role not in ROLES:
            return f"{where} has an unknown role {role!r}"
        if "weight" in message and message["weight"] not in (0, 1):
            return f"{where}: 'weight' must be 0 or 1"
        content = message["content"]
        if not isinstance(content, str) or not content.strip():
            return f"{where} ({role}) has empty or non-text content"
        if role == "system":
            if n != 1:
                return f"{where}: a system message may only come first"
            continue
        if role != expected:
            return f"{where} is from the {role}; expected the {expected}"
        expected = "assistant" if role == "user" else "user"
    if messages[-1].get("role") != "assistant":
        return "the example must end with an assistant message"
    return None


def check_openai_jsonl(path: Path | str, *, limit: int = 20) -> tuple[int, list[FormatProblem]]:
    """(examples read, the first `limit` problems) of a whole file, read line by line."""
    problems: list[FormatProblem] = []
    count = 0
    with open(path, "rb") as handle:
        for lineno, line in enumerate(handle, start=1):
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                problems.append(FormatProblem(1, "the file starts with a byte-order mark"))
            if not line.endswith(b"\n"):
                problems.append(FormatProblem(lineno, "the last line does not end with a newline"))
            body = line.rstrip(b"\n")
            if not body.strip():
                problems.append(FormatProblem(lineno, "blank line"))
                continue
            try:
                body.decode("utf-8")
                obj = orjson.loads(body)
            except UnicodeDecodeError:
                problems.append(FormatProblem(lineno, "invalid UTF-8"))
                continue
            except orjson.JSONDecodeError as exc:
                problems.append(FormatProblem(lineno, f"not one JSON value: {exc}"))
                continue
            count += 1
            if (reason := check_example(obj)) is not None:
                problems.append(FormatProblem(lineno, reason))
            if len(problems) >= limit:
                break
    if count == 0 and not problems:
        problems.append(FormatProblem(0, "the file holds no example"))
    return count, problems[:limit]
