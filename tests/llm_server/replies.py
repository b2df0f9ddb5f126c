"""What the test server says, by role. The role is read from the requested `model` name (its first
dash-separated word: `judge-a` answers as a judge), so one server stands in for every endpoint.

Replies are a pure function of the request (model + messages), so a test can predict them; faults are
drawn elsewhere (server.py) per HTTP request.
"""

import hashlib
import json
import random
import re

ROLES = ("teacher", "judge", "generator", "rationale", "classifier", "echo")
CATEGORIES = ("Math", "Reasoning", "Coding", "Writing", "Knowledge", "Roleplay", "Extraction", "STEM")

_SUBJECTS = (
    "the water cycle",
    "a binary search tree",
    "compound interest",
    "the French Revolution",
    "photosynthesis",
    "a haiku about autumn",
    "unit testing",
    "the Pythagorean theorem",
    "supply and demand",
    "a polite complaint letter",
    "prime factorisation",
    "plate tectonics",
)
_VERBS = ("Explain", "Describe", "Summarise", "Compare", "Write a short note on", "Give three facts about")


def role_of(model: str) -> str:
    head = model.split("-", 1)[0].split(":", 1)[0].lower()
    return head if head in ROLES else "teacher"


def request_seed(model: str, messages) -> int:
    digest = hashlib.sha256(json.dumps([model, messages], sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _last_user_text(messages) -> str:
    for message in reversed(messages or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def answer(model: str, messages) -> str:
    """A reply that honours the role's contract."""
    rng = random.Random(request_seed(model, messages))
    role = role_of(model)
    prompt = _last_user_text(messages)
    if role == "echo":
        return prompt
    if role == "judge":
        first, second = rng.randint(1, 10), rng.randint(1, 10)
        return (
            "Both assistants address the question; the first is "
            f"{'more' if first >= second else 'less'} complete than the second.\n\n"
            f"Score of Assistant 1: {first}\nScore of Assistant 2: {second}"
        )
    if role == "generator":
        if "#Seed request#" in prompt:  # TAPIR's expand_seed: varied enough that most pass the novelty filter
            first, second, third = rng.sample(_SUBJECTS, 3)
            return f"{rng.choice(_VERBS)} {first}, then relate it to {second} and {third}."
        return f"{rng.choice(_VERBS)} {rng.choice(_SUBJECTS)} for a curious twelve-year-old."
    if role == "rationale":
        return _rationale(model, prompt, rng)
    if role == "classifier":
        # Pick from the list the prompt offers ("- Category" lines), else from a default list.
        offered = re.findall(r"^- (.+)$", prompt, flags=re.MULTILINE)
        category = rng.choice(offered or CATEGORIES)
        return f"The request mainly asks for one kind of work.\n<answer>{category}</answer>"
    if "step by step" in prompt:  # TAPIR's chain-of-thought style (rewrite_/answer_chain_of_thought)
        steps = "\n".join(f"Step {k}: consider {rng.choice(_SUBJECTS)}." for k in (1, 2, 3))
        return f"{steps}\nFinal answer: {rng.randint(2, 99)}"
    if "fenced block" in prompt:  # TAPIR's commented-code style
        name = rng.choice(_SUBJECTS).replace(" ", "_").replace("-", "_")
        code = f"# {name}: the whole approach\ndef solve(x):\n    return x  # base case"
        return f"Plan: solve it in one function.\n```python\n{code}\n```"
    return (
        f"Here is a careful answer to your request ({len(prompt)} characters long): "
        + " ".join(rng.choice(_SUBJECTS) for _ in range(6))
        + "."
    )


def _last_question(prompt: str) -> str:
    """The question a few-shot prompt ends with: the text after its last "Q:" line (the whole prompt when
    it has none), without the closing "A:"."""
    starts = list(re.finditer(r"^Q:[ \t]*", prompt, flags=re.MULTILINE))
    question = prompt[starts[-1].end() :] if starts else prompt
    return re.sub(r"\n\s*A:\s*$", "", question).strip()


def _rationale(model: str, prompt: str, rng: random.Random) -> str:
    """A chain of thought about the prompt's last question. `rationale-svamp` (any model name with
    "svamp") answers a word problem with the sum of its first two numbers, so a test can predict which gold
    equations it agrees with; a problem with fewer than two numbers gets reasoning with no answer, a reply
    the rationale contract refuses every time. Otherwise a choice of the question's own "(a) …" options,
    or yes/no."""
    question = _last_question(prompt)
    if "svamp" in model.lower():
        numbers = re.findall(r"\d+(?:\.\d+)?", question)
        if len(numbers) < 2:
            return "The problem does not give two quantities to work with, so it cannot be solved as stated."
        a, b = numbers[:2]
        return f"The problem gives {a} and {b}, and the question asks for them together. The answer is ({a} + {b})."
    choices = re.findall(r"^\(([a-e])\)\s*(.+)$", question, flags=re.MULTILINE)
    if choices:
        letter, text = rng.choice(choices)
        label = f"({letter}) {text.strip()}"
    else:
        label = rng.choice(("yes", "no"))
    return f"We look at what the question asks and weigh each option in turn. So the answer is {label}."


def garbage(model: str, rng: random.Random) -> str:
    """A reply that breaks the role's contract, the way real models sometimes do."""
    role = role_of(model)
    if role == "judge":
        return rng.choice(("Both answers are fine.", "Score: 7 and 5", "Assistant 1 is better overall."))
    if role == "generator":
        return rng.choice(("Here is a new instruction: list fruits.", "...", "Sure!", "- Write code."))
    if role == "rationale":
        return "The options are all somewhat plausible and more context would help."
    if role == "classifier":
        return "This looks like a Math question to me."
    return ""


def approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)
