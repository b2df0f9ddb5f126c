"""A prepared LLM request and its cache key.

The key is the SHA-256 of the canonical request: model, messages, the sampling parameters as sent and the
sample index. Everything else a request carries (the prompt template it came from, the variables that
filled it, the reply contract) describes the request but does not change what the provider is asked, so
it stays out of the hash. Asking for a fresh sample means asking with the next sample index.
"""

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

OPENAI_BACKEND = "openai"


def _canonical_value(value: Any) -> Any:
    # 1 and 1.0 are the same temperature; keep them one cache entry.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(_canonical_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class PreparedRequest:
    model: str
    messages: list[dict]
    params: dict = field(default_factory=dict)
    sample: int = 0
    # Offline backends answer from data, not from a model: their replies must never be mistaken for a
    # real model's of the same name, so the backend joins the key when it is not the API.
    backend: str = OPENAI_BACKEND
    contract: dict = field(default_factory=dict)  # how to check the reply (see contracts.py)
    template: dict | None = None  # {"id": ..., "version": ...}
    vars: dict = field(default_factory=dict)  # the values the template was filled with

    def canonical(self) -> dict:
        canon = {"model": self.model, "messages": self.messages, "params": self.params, "sample": self.sample}
        if self.backend != OPENAI_BACKEND:
            canon["backend"] = self.backend
        return canon

    @property
    def hash(self) -> str:
        return hashlib.sha256(canonical_json(self.canonical()).encode()).hexdigest()

    def body(self) -> dict:
        """The JSON body of the chat-completions call."""
        return {**self.params, "model": self.model, "messages": self.messages}

    def with_sample(self, sample: int) -> "PreparedRequest":
        return replace(self, sample=sample)

    def to_json(self) -> dict:
        data = {
            "model": self.model,
            "messages": self.messages,
            "params": self.params,
            "sample": self.sample,
            "contract": self.contract,
            "vars": self.vars,
        }
        if self.backend != OPENAI_BACKEND:
            data["backend"] = self.backend
        if self.template:
            data["template"] = self.template
        return data

    @classmethod
    def from_json(cls, data: dict) -> "PreparedRequest":
        return cls(
            model=data["model"],
            messages=data["messages"],
            params=data.get("params") or {},
            sample=int(data.get("sample") or 0),
            backend=data.get("backend") or OPENAI_BACKEND,
            contract=data.get("contract") or {},
            template=data.get("template"),
            vars=data.get("vars") or {},
        )


def merged_params(defaults: dict | None, params: dict | None) -> dict:
    """The endpoint's sampling defaults overridden by the request's own; None removes a default."""
    merged = dict(defaults or {})
    for key, value in (params or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
