"""Turn one parsed record (a dict) into a Record, or say precisely what is wrong with it."""

from typing import Any

from apps.datasets.formats.records import Record, RecordProblem

OUTPUT_KEYS = ("output", "response")
LABEL_KEYS = ("gold_label", "label")
CATEGORY_KEYS = ("task_category", "category")
_ALPACA_KNOWN = {"instruction", "input", *OUTPUT_KEYS, *LABEL_KEYS, *CATEGORY_KEYS}

# ShareGPT speaker names (and OpenAI roles) mapped to user / assistant / system.
SPEAKERS = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _optional_text(obj: dict, key: str) -> str | RecordProblem | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if key in LABEL_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return RecordProblem("", f"'{key}' must be a string, got {_type_name(value)}")


def _first(obj: dict, keys: tuple[str, ...]) -> str | RecordProblem:
    for key in keys:
        value = _optional_text(obj, key)
        if value is not None:
            return value
    return ""


_PLAIN_KEYS = frozenset({"instruction", "input", "output"})


def record_from_alpaca(obj: Any, location: str) -> Record | RecordProblem:
    # Fast path for the common shape: only Alpaca's three keys, all strings (or a null input/output).
    if type(obj) is dict and obj.keys() <= _PLAIN_KEYS:
        text, input_, output = obj.get("instruction"), obj.get("input"), obj.get("output")
        if (
            type(text) is str
            and text
            and not text.isspace()
            and (input_ is None or type(input_) is str)
            and (output is None or type(output) is str)
        ):
            return Record(text=text, input=input_ or "", reference_output=output or "", location=location)
    return _record_from_any_alpaca(obj, location)


def _record_from_any_alpaca(obj: Any, location: str) -> Record | RecordProblem:
    if not isinstance(obj, dict):
        return RecordProblem(location, f"expected a JSON object with an 'instruction' key, got {_type_name(obj)}")
    if "instruction" not in obj:
        if "conversations" in obj or "messages" in obj:
            other = "ShareGPT" if "conversations" in obj else "OpenAI chat"
            return RecordProblem(
                location, f"this is a {other} record, but the file was read as Alpaca; a file must hold one format"
            )
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        return RecordProblem(location, f"missing the 'instruction' key (keys found: {keys})")
    text = obj["instruction"]
    if not isinstance(text, str):
        return RecordProblem(location, f"'instruction' must be a string, got {_type_name(text)}")
    if not text.strip():
        return RecordProblem(location, "'instruction' is empty")
    input_ = _optional_text(obj, "input")
    output = _first(obj, OUTPUT_KEYS)
    label = _first(obj, LABEL_KEYS)
    category = _first(obj, CATEGORY_KEYS)
    for value in (input_, output, label, category):
        if isinstance(value, RecordProblem):
            return RecordProblem(location, value.reason)
    metadata = {k: v for k, v in obj.items() if k not in _ALPACA_KNOWN}
    instances = obj.get("instances")
    # Self-Instruct tasks keep their input/output pairs in `instances`; the first is the example.
    if input_ is None and isinstance(instances, list) and instances and isinstance(instances[0], dict):
        first = instances[0]
        if isinstance(first.get("input", ""), str) and isinstance(first.get("output", ""), str):
            input_ = first.get("input", "")
            output = output or first.get("output", "")
    return Record(
        text=text,
        input=input_ or "",
        reference_output=output,
        gold_label=label,
        task_category=category.strip(),
        metadata=metadata,
        location=location,
    )


def _message_text(content: Any, where: str) -> str | RecordProblem:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else _type_name(part)
                return RecordProblem("", f"{where} has a non-text part ({kind}); only text is imported")
            parts.append(part["text"])
        return "\n".join(parts)
    return RecordProblem("", f"{where} content must be a string, got {_type_name(content)}")


def record_from_turns(
    turns: Any, location: str, *, speaker_key: str, content_key: str, container: str, extra: dict
) -> Record | RecordProblem:
    """A conversation becomes one instruction: the first user message, answered by the first
    assistant message; any later turns stay with it (and make it distinct from its first exchange)."""
    if not isinstance(turns, list) or not turns:
        return RecordProblem(location, f"'{container}' must be a non-empty array of messages")
    system, normalised = "", []
    for i, turn in enumerate(turns, start=1):
        where = f"message {i}"
        if not isinstance(turn, dict):
            return RecordProblem(location, f"{where} must be an object, got {_type_name(turn)}")
        speaker = turn.get(speaker_key)
        role = SPEAKERS.get(speaker.lower()) if isinstance(speaker, str) else None
        if role is None:
            return RecordProblem(location, f"{where} has an unknown '{speaker_key}': {speaker!r}")
        content = _message_text(turn.get(content_key), where)
        if isinstance(content, RecordProblem):
            return RecordProblem(location, content.reason)
        if role == "system":
            if normalised:
                return RecordProblem(location, f"{where}: a system message may only come first")
            system = content
            continue
        expected = "user" if len(normalised) % 2 == 0 else "assistant"
        if role != expected:
            return RecordProblem(
                location, f"{where} is from the {role}; expected the {expected} (turns must alternate, user first)"
            )
        normalised.append({"role": role, "content": content})
    if not normalised:
        return RecordProblem(location, "the conversation has no user message")
    text = normalised[0]["content"]
    if not text.strip():
        return RecordProblem(location, "the first user message is empty")
    later = normalised[1:] if len(normalised) > 2 else None
    metadata = dict(extra)
    if system:
        metadata["system"] = system
    if later:
        metadata["turns"] = later
    return Record(
        text=text,
        reference_output=normalised[1]["content"] if len(normalised) > 1 else "",
        task_category=str(extra.get("category", "")).strip() if isinstance(extra.get("category"), str) else "",
        metadata=metadata,
        turns=later,
        location=location,
    )


def record_from_sharegpt(obj: Any, location: str) -> Record | RecordProblem:
    if not isinstance(obj, dict) or "conversations" not in obj:
        found = "an Alpaca record" if isinstance(obj, dict) and "instruction" in obj else _type_name(obj)
        return RecordProblem(location, f"expected a ShareGPT record with 'conversations', got {found}")
    extra = {k: v for k, v in obj.items() if k != "conversations"}
    return record_from_turns(
        obj["conversations"], location, speaker_key="from", content_key="value", container="conversations", extra=extra
    )


def record_from_openai(obj: Any, location: str) -> Record | RecordProblem:
    if not isinstance(obj, dict) or "messages" not in obj:
        found = "an Alpaca record" if isinstance(obj, dict) and "instruction" in obj else _type_name(obj)
        return RecordProblem(location, f"expected an OpenAI chat record with 'messages', got {found}")
    extra = {k: v for k, v in obj.items() if k != "messages"}
    return record_from_turns(
        obj["messages"], location, speaker_key="role", content_key="content", container="messages", extra=extra
    )


MAPPERS = {
    "alpaca": record_from_alpaca,
    "jsonl": record_from_alpaca,
    "csv": record_from_alpaca,
    "parquet": record_from_alpaca,
    "sharegpt": record_from_sharegpt,
    "openai": record_from_openai,
}
