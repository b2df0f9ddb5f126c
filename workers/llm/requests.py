"""A prepared LLM request and its cache key.

The key is the SHA-256 of the canonical request: the identity of what answers it (see `endpoint_identity`),
model, messages, the sampling parameters as sent and the sample index. Everything else a request carries
(the prompt template it came from, the variables that filled it, the reply contract) describes the request
but does not change what the provider is asked, so it stays out of the hash. Asking for a fresh sample
means asking with the next sample index.
"""

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_base_url(url: str) -> str:
    """One spelling per server: lower-case scheme and host, no default port, no trailing slash."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if parts.port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{parts.port}"
    if parts.username:  # never expected, but two users of one host are two identities
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


def endpoint_identity(
    *, backend: str, base_url: str = "", checkpoint: str = "", dataset: int | str | None = None
) -> dict:
    """What answers a request, beyond its model name: for an API the server (normalised base URL) and,
    for a student, the checkpoint it serves; for an offline backend the dataset it answers from (the
    backend itself is already in the key). Two servers that serve different weights under one model name
    then never share a cache entry, while two endpoint rows pointing at the same server and model do."""
    if backend != OPENAI_BACKEND:
        return {"dataset": dataset} if dataset is not None else {}
    identity = {"base_url": normalise_base_url(base_url)} if base_url else {}
    if checkpoint:
        identity["checkpoint"] = checkpoint.strip()
    return identity


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
    identity: dict = field(default_factory=dict)  # endpoint_identity() of the endpoint it is meant for

    def canonical(self) -> dict:
        canon = {"model": self.model, "messages": self.messages, "params": self.params, "sample": self.sample}
        if self.backend != OPENAI_BACKEND:
            canon["backend"] = self.backend
        if self.identity:
            canon["endpoint"] = self.identity
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
        if self.identity:
            data["identity"] = self.identity
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
            identity=data.get("identity") or {},
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
