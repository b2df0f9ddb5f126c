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
        return f"{rng.choice(_VERBS)} {rng.choice(_SUBJECTS)} for a curious twelve-year-old."
    if role == "rationale":
        choices = re.findall(r"^\(([a-e])\)\s*(.+)$", prompt, flags=re.MULTILINE)
        label = rng.choice(choices)[1].strip() if choices else rng.choice(("yes", "no"))
        return f"We look at what the question asks and weigh each option in turn. So the answer is {label}."
    if role == "classifier":
        # Pick from the list the prompt offers ("- Category" lines), else from a default list.
        offered = re.findall(r"^- (.+)$", prompt, flags=re.MULTILINE)
        category = rng.choice(offered or CATEGORIES)
        return f"The request mainly asks for one kind of work.\n<answer>{category}</answer>"
    return (
        f"Here is a careful answer to your request ({len(prompt)} characters long): "
        + " ".join(rng.choice(_SUBJECTS) for _ in range(6))
        + "."
    )


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
