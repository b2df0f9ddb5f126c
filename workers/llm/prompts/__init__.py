"""Prompt templates: versioned TOML files beside this module, one per purpose.

A file is named `<id>.v<version>.toml`. A template never changes once results were made with it: a change
is a new file with the next version, so every Response and Judgment can say exactly which text produced
it (template id + version). Placeholders are `$name` (string.Template), filled from the variables the
template declares; `$task` is the instruction followed by its input, if it has one.
"""

import re
import string
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from workers.algorithms import task_vocabulary
from workers.llm.requests import PreparedRequest, merged_params

PROMPT_DIR = Path(__file__).resolve().parent
_FILE_NAME = re.compile(r"^(?P<id>[a-z0-9_]+)\.v(?P<version>\d+)\.toml$")

# The classifier's list is the task vocabulary (owned by workers.algorithms), so every label it can give
# has a resampling ratio and a response style.
TASK_CATEGORIES = task_vocabulary.TASK_CATEGORIES
STYLE_TEMPLATES = {
    task_vocabulary.CHAIN_OF_THOUGHT: "rewrite_chain_of_thought",
    task_vocabulary.COMMENTED_CODE: "rewrite_commented_code",
    task_vocabulary.DETAILED: "rewrite_detailed",
}


def style_for_task_type(task_type: str) -> str:
    """TAPIR's per-task response style (chain of thought for math and reasoning, commented code for code,
    detailed otherwise); no task type means detailed, an unknown one raises UnknownTaskLabel."""
    if not (task_type or "").strip():
        return task_vocabulary.DETAILED
    return task_vocabulary.response_style(task_type)


def task_text(instruction: str, input_text: str = "") -> str:
    if input_text and input_text.strip():
        return f"{instruction.strip()}\n\n{input_text.strip()}"
    return instruction.strip()


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    purpose: str  # teacher, judge, generator, classifier: the endpoint role that answers it
    contract: str  # answer, judge, generator, rationale, classifier: how the reply is checked
    title: str
    description: str
    variables: tuple[str, ...]
    system: str
    user: str
    examples: dict = field(default_factory=dict)
    example_format: str = ""
    path: str = ""

    @property
    def ref(self) -> dict:
        return {"id": self.id, "version": self.version}

    def placeholders(self) -> set[str]:
        found = set()
        for text in (self.system, self.user):
            for match in string.Template.pattern.finditer(text):
                name = match.group("named") or match.group("braced")
                if name:
                    found.add(name)
        return found

    def render_examples(self, task_type: str) -> str:
        examples = self.examples.get(task_type) or self.examples.get("generic") or []
        fmt = string.Template(self.example_format or "$question\n$answer")
        return "\n\n".join(fmt.substitute(example) for example in examples)

    def render(self, variables: dict) -> list[dict]:
        values = dict(variables)
        if "task" in self.variables and "task" not in values and "instruction" in values:
            values["task"] = task_text(values["instruction"], values.get("input", ""))
        if "examples" in self.variables and "examples" not in values:
            values["examples"] = self.render_examples(values.get("task_type", "generic"))
        if "categories" in self.variables:
            values["categories"] = render_categories(values.get("categories", TASK_CATEGORIES))
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise TemplateError(f"Template {self.id} v{self.version} needs: {', '.join(missing)}.")
        messages = []
        if self.system:
            messages.append({"role": "system", "content": string.Template(self.system).substitute(values)})
        messages.append({"role": "user", "content": string.Template(self.user).substitute(values)})
        return messages


def render_categories(categories) -> str:
    """The bullet list of task categories a classifier prompt offers: the vocabulary, or a part of it."""
    if isinstance(categories, str):
        raise TemplateError("Pass the categories as a list of task categories, not as text.")
    categories = list(categories)
    try:
        task_vocabulary.check_task_categories(categories, "categories")
    except task_vocabulary.UnknownTaskLabel as exc:
        raise TemplateError(str(exc)) from None
    if not categories:
        raise TemplateError("A classifier prompt needs at least one category.")
    return "\n".join(f"- {c}" for c in categories)


def _load(path: Path) -> PromptTemplate:
    match = _FILE_NAME.match(path.name)
    if not match:
        raise TemplateError(f"{path.name}: template files are named <id>.v<version>.toml")
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    template = PromptTemplate(
        id=data["id"],
        version=int(data["version"]),
        purpose=data["purpose"],
        contract=data["contract"],
        title=data["title"],
        description=data.get("description", "").strip(),
        variables=tuple(data.get("variables", ())),
        system=data.get("system", ""),
        user=data["user"],
        examples=data.get("examples", {}),
        example_format=data.get("example_format", ""),
        path=str(path),
    )
    if (template.id, template.version) != (match["id"], int(match["version"])):
        raise TemplateError(f"{path.name}: id/version inside the file differ from its name")
    return template


@lru_cache(maxsize=1)
def all_templates() -> dict[tuple[str, int], PromptTemplate]:
    return {(t.id, t.version): t for t in map(_load, sorted(PROMPT_DIR.glob("*.toml")))}


def latest_templates() -> list[PromptTemplate]:
    newest: dict[str, PromptTemplate] = {}
    for template in all_templates().values():
        if template.id not in newest or template.version > newest[template.id].version:
            newest[template.id] = template
    return sorted(newest.values(), key=lambda t: t.id)


def get_template(template_id: str, version: int | None = None) -> PromptTemplate:
    if version is not None:
        try:
            return all_templates()[(template_id, int(version))]
        except KeyError:
            raise TemplateError(f"No prompt template {template_id} v{version}.") from None
    for template in latest_templates():
        if template.id == template_id:
            return template
    raise TemplateError(f"No prompt template {template_id!r}.")


def build_request(
    template: PromptTemplate,
    variables: dict,
    *,
    model: str,
    params: dict | None = None,
    defaults: dict | None = None,
    backend: str = "openai",
    sample: int = 0,
    contract: dict | None = None,
) -> PreparedRequest:
    """A request from a template: messages rendered, the endpoint's defaults merged into the params, and
    the reply contract (kind from the template, options from the caller) attached."""
    rendered_vars = {k: v for k, v in variables.items() if isinstance(v, str | int | float | list)}
    contract = dict(contract or {})
    if template.contract == "classifier" and "categories" not in contract:
        # The reply must name one of the categories the prompt offered.
        contract["categories"] = list(variables.get("categories", TASK_CATEGORIES))
    return PreparedRequest(
        model=model,
        messages=template.render(variables),
        params=merged_params(defaults, params),
        sample=sample,
        backend=backend,
        contract={"kind": template.contract, **contract},
        template=template.ref,
        vars=rendered_vars,
    )
