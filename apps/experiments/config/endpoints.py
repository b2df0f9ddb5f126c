"""`endpoints:`: which model plays each role, by an existing endpoint's name, inline, or an offline backend.

teacher: gpt-4o-teacher                                   # an LLMEndpoint's name
judge: {base_url: https://api.openai.com/v1, model: gpt-4o, api_key_env: OPENAI_API_KEY}
generator: offline:retrieval:demo-alpaca                   # an offline backend over a dataset
classifier: offline:task-classifier                        # the local MiniLM task classifier
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from apps.experiments.config.errors import Path, Problems, close_match, describe
from apps.experiments.config.fields import Field, Invalid, coerce
from workers.llm.keys import refusal

ROLES = ("teacher", "judge", "generator", "classifier", "student")

# recipe -> (roles it needs, roles it may have). mos has a teacher exactly when params.teacher_answers is true.
RECIPE_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lion": (("teacher", "judge", "generator"), ("student",)),
    "tapir": (("teacher", "judge", "generator"), ("classifier", "student")),
    "step_by_step": (("teacher",), ("student",)),
    "mos": ((), ("student",)),
}
# Roles filled in when left out: TAPIR's classifier is the local one unless an LLM classifier is named.
DEFAULT_ROLES = {"tapir": {"classifier": "offline:task-classifier"}}

LOCAL_CLASSIFIER = "offline:task-classifier"
# shorthand kind -> (LLMEndpoint.backend, the roles it can play)
OFFLINE_KINDS = {
    "replay": ("offline_replay", ("teacher", "student", "classifier")),
    "similarity_judge": ("offline_similarity_judge", ("judge",)),
    "retrieval": ("offline_retrieval", ("generator",)),
}
SHORTHANDS = (*(f"offline:{kind}:<dataset>" for kind in OFFLINE_KINDS), LOCAL_CLASSIFIER)


@dataclasses.dataclass(frozen=True)
class EndpointRef:
    """One role's endpoint: `name` of an existing LLMEndpoint, or `inline` fields to create one.

    Offline shorthands are inline: {"backend": "offline_replay", "offline_dataset": "<dataset name>"}, or
    {"backend": "offline_local_classifier"} for the local task classifier (no dataset); `shorthand`
    keeps the text as written, which is also the name an engine gives the endpoint it creates for it.
    """

    name: str | None = None
    inline: dict | None = None
    shorthand: str | None = None

    @property
    def is_local_classifier(self) -> bool:
        return self.shorthand == LOCAL_CLASSIFIER

    @property
    def is_offline(self) -> bool:
        return self.shorthand is not None

    def to_value(self) -> str | dict:
        """The canonical config form: the name, the shorthand, or the inline fields."""
        if self.shorthand is not None:
            return self.shorthand
        if self.name is not None:
            return self.name
        return dict(self.inline or {})


@cache
def inline_fields() -> dict[str, Field]:
    """Inline endpoint keys, their defaults read from the LLMEndpoint model's fields."""
    from apps.llm.models import LLMEndpoint

    meta = LLMEndpoint._meta

    def default(name: str) -> Any:
        value = meta.get_field(name).default
        return value() if callable(value) else value

    def length(name: str) -> int:
        return meta.get_field(name).max_length

    return {
        "name": Field("str", None, nullable=True, max_length=length("name"), doc="the endpoint to create or update"),
        "base_url": Field("url", None, max_length=length("base_url")),
        "model": Field("str", None, max_length=length("model")),
        "api_key_env": Field("key_env", "", doc="the environment variable holding the key"),
        "checkpoint": Field("str_blank", "", max_length=length("checkpoint")),
        "max_concurrency": Field("int", default("max_concurrency"), low=1, high=10_000),
        "requests_per_minute": Field("int", None, low=1, nullable=True),
        "tokens_per_minute": Field("int", None, low=1, nullable=True),
        "timeout_s": Field("float", float(default("timeout_s")), low=0.1, high=86_400.0),
        "price_input_per_mtok": Field("price", str(default("price_input_per_mtok").quantize(_PRICE))),
        "price_output_per_mtok": Field("price", str(default("price_output_per_mtok").quantize(_PRICE))),
        "default_params": Field("params", {}),
    }


_PRICE = Decimal("0.000001")  # LLMEndpoint's prices keep 6 decimal places
_URL = URLValidator(schemes=["http", "https"])


def _price(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Invalid(f"expected a price in USD per million tokens, got {describe(value)}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise Invalid(f"expected a price in USD per million tokens, got {describe(value)}") from None
    if not price.is_finite() or price < 0 or price >= 1_000_000:
        raise Invalid(f"expected a price from 0 to 999999, got {describe(value)}")
    return str(price.quantize(_PRICE))


def _inline_value(field: Field, value: Any) -> Any:
    if field.kind == "url":
        text = coerce(Field("str", max_length=field.max_length), value)
        try:
            _URL(text)
        except ValidationError:
            raise Invalid(f"expected an http:// or https:// URL, got {describe(value)}") from None
        return text.rstrip("/")
    if field.kind == "key_env":
        if value in (None, ""):
            return ""
        if not isinstance(value, str):
            raise Invalid(f"expected the name of an environment variable, got {describe(value)}")
        if reason := refusal(value):
            raise Invalid(f"refused: {reason}")
        return value
    if field.kind == "str_blank":
        return "" if value in (None, "") else coerce(Field("str", max_length=field.max_length), value)
    if field.kind == "price":
        return _price(value)
    if field.kind == "params":
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
            raise Invalid(
                f"expected a mapping of sampling parameters such as {{temperature: 0.7}}, got {describe(value)}"
            )
        return dict(value)
    return coerce(field, value)


def _shorthand(text: str, role: str, path: Path, problems: Problems) -> EndpointRef | None:
    if text == LOCAL_CLASSIFIER:
        if role != "classifier":
            problems.add(path, f"{LOCAL_CLASSIFIER} is a task classifier; it can only be the classifier")
            return None
        return EndpointRef(inline={"backend": "offline_local_classifier"}, shorthand=text)
    parts = text.split(":", 2)
    kind = parts[1] if len(parts) > 1 else ""
    if kind not in OFFLINE_KINDS or len(parts) != 3 or not parts[2].strip():
        hint = close_match(kind, OFFLINE_KINDS) if kind not in OFFLINE_KINDS else ""
        problems.add(path, f"unknown offline backend {describe(text)}{hint}; expected one of {', '.join(SHORTHANDS)}")
        return None
    backend, roles = OFFLINE_KINDS[kind]
    if role not in roles:
        problems.add(path, f"offline:{kind} can be the {' or '.join(roles)}, not the {role}")
        return None
    return EndpointRef(inline={"backend": backend, "offline_dataset": parts[2].strip()}, shorthand=text)


def _inline(raw: Mapping, path: Path, problems: Problems) -> EndpointRef | None:
    table = inline_fields()
    before = len(problems.items)
    problems.check_keys(raw, path, table)
    fields: dict[str, Any] = {name: field.value for name, field in table.items()}
    for key in ("base_url", "model"):
        if raw.get(key) is None:
            problems.add((*path, key), f"an inline endpoint needs its {key}")
    for key, value in raw.items():
        field = table.get(key)
        if field is None or (key in ("base_url", "model") and value is None):
            continue
        try:
            fields[key] = _inline_value(field, value)
        except Invalid as error:
            problems.add((*path, key), str(error))
    return EndpointRef(inline=fields) if len(problems.items) == before else None


def parse_endpoint(value: Any, role: str, path: Path, problems: Problems) -> EndpointRef | None:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            problems.add(path, 'expected an endpoint\'s name, an inline endpoint or an offline backend, got ""')
            return None
        if text.startswith("offline:"):
            return _shorthand(text, role, path, problems)
        if len(text) > inline_fields()["name"].max_length:
            problems.add(path, f"an endpoint's name has at most {inline_fields()['name'].max_length} characters")
            return None
        return EndpointRef(name=text)
    if isinstance(value, Mapping):
        return _inline(value, path, problems)
    problems.add(
        path,
        f"expected an endpoint's name, an inline endpoint {{base_url, model, ...}} or one of "
        f"{', '.join(SHORTHANDS)}, got {describe(value)}",
    )
    return None


def validate_endpoints(recipe: str | None, raw: Any, problems: Problems, *, teacher_needed: bool) -> dict:
    """role -> EndpointRef for the roles given (plus the recipe's default roles); problems are added."""
    path: Path = ("endpoints",)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a mapping of role to endpoint, got {describe(raw)}")
        return {}
    problems.check_keys(raw, path, ROLES)
    refs: dict[str, EndpointRef] = {}
    if recipe is None:
        for role, value in raw.items():
            if role in ROLES and value is not None:
                ref = parse_endpoint(value, role, (*path, role), problems)
                if ref is not None:
                    refs[role] = ref
        return refs
    required, optional = RECIPE_ROLES[recipe]
    if teacher_needed:
        required = (*required, "teacher")
    given = {role: value for role, value in raw.items() if role in ROLES and value is not None}
    for role, value in {**DEFAULT_ROLES.get(recipe, {}), **given}.items():
        if role not in required and role not in optional:
            why = " unless params.teacher_answers is true" if recipe == "mos" and role == "teacher" else ""
            uses = ", ".join((*required, *optional))
            problems.note((*path, role), f"ignored: {recipe} has no {role}{why} (it uses {uses})")
            continue
        ref = parse_endpoint(value, role, (*path, role), problems)
        if ref is not None:
            refs[role] = ref
    for role in required:
        if role not in given and role not in DEFAULT_ROLES.get(recipe, {}):
            why = " (params.teacher_answers is true)" if recipe == "mos" else ""
            problems.add(
                (*path, role),
                f"{recipe} needs a {role}{why}; name an endpoint, write one inline or use an offline backend",
            )
    return {role: refs[role] for role in ROLES if role in refs}
