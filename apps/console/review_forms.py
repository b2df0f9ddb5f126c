"""Forms of the review pages: the queue's scope (experiment, round), the table's filters and cursor, the
decision a reviewer posts and a bulk decision."""

import re

from django import forms

from apps.reviews.kinds import ALLOWED, Kind
from apps.reviews.models import ReviewTask
from apps.reviews.services import MAX_BULK, MAX_NOTE

_CURSOR = re.compile(r"^(-?\d{1,9})\.(\d{1,19})$")
YES_NO = [("", "either"), ("yes", "yes"), ("no", "no")]
ORIGINS = {
    Kind.GENERATED: [("", "any origin"), ("hard", "from a hard seed"), ("easy", "from an easy seed"),
                     ("expanded", "expanded from a seed")],
    Kind.VERDICT: [("", "hard or easy"), ("hard", "judged hard"), ("easy", "judged easy")],
}  # fmt: skip
# Which filters a kind's table offers (the others do not apply to its subjects).
KIND_FILTERS = {
    Kind.VERDICT: {"category", "gap", "contested", "origin", "q"},
    Kind.GENERATED: {"category", "origin", "q"},
    Kind.REWRITE: {"category", "q"},
    Kind.RATIONALE: {"category", "q"},
    Kind.ANSWER: {"category", "q"},
    Kind.TASK_LABEL: {"category", "q"},
    Kind.INVALID_REPLY: {"q"},
}


def parse_cursor(value: str) -> tuple[int, int] | None:
    """ "priority.id" -> (priority, id); ValueError for anything else."""
    match = _CURSOR.match(value or "")
    if match is None:
        raise ValueError(f"{value!r} is not a page cursor (priority.id).")
    return int(match.group(1)), int(match.group(2))


def format_cursor(task: ReviewTask) -> str:
    return f"{task.priority}.{task.pk}"


class ScopeForm(forms.Form):
    """Which experiment's or round's tasks a queue page shows; both optional."""

    experiment = forms.IntegerField(required=False, min_value=1)
    round = forms.IntegerField(required=False, min_value=1)


class CursorField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        try:
            return parse_cursor(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class QueueFilterForm(ScopeForm):
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *ReviewTask.Status.choices])
    category = forms.CharField(required=False, max_length=64)
    gap_min = forms.FloatField(required=False, label="gap from")
    gap_max = forms.FloatField(required=False, label="gap to")
    contested = forms.ChoiceField(required=False, choices=YES_NO)
    origin = forms.ChoiceField(required=False, choices=[("", "any")])
    reviewer = forms.CharField(required=False, max_length=150, help_text="tasks this reviewer voted on")
    q = forms.CharField(required=False, max_length=200, label="search")
    after = CursorField(required=False)
    before = CursorField(required=False)

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.offered = KIND_FILTERS[kind]
        self.fields["origin"].choices = ORIGINS.get(kind, [("", "any")])

    def clean(self):
        data = super().clean()
        if data.get("after") and data.get("before"):
            raise forms.ValidationError("A page is either after a task or before one, not both.")
        low, high = data.get("gap_min"), data.get("gap_max")
        if low is not None and high is not None and low > high:
            self.add_error("gap_max", f"The gap range is empty: {low} is above {high}.")
        return data

    def filters(self) -> dict:
        """The cleaned filters this kind offers, without the cursor."""
        data, out = self.cleaned_data, {}
        out["status"], out["reviewer"] = data.get("status", ""), data.get("reviewer", "")
        out["experiment_id"], out["round_id"] = data.get("experiment"), data.get("round")
        if "category" in self.offered:
            out["category"] = data.get("category", "")
        if "gap" in self.offered:
            out["gap_min"], out["gap_max"] = data.get("gap_min"), data.get("gap_max")
        if "contested" in self.offered:
            out["contested"] = {"yes": True, "no": False}.get(data.get("contested"))
        if "origin" in self.offered:
            out["origin"] = data.get("origin", "")
        if "q" in self.offered:
            out["q"] = data.get("q", "")
        return out


class DecisionForm(forms.Form):
    """A reviewer's vote (or an operator's resolution) on one task: the decision of the button pressed."""

    decision = forms.ChoiceField(choices=[])
    edited_text = forms.CharField(required=False, strip=False, max_length=200_000)
    note = forms.CharField(required=False, max_length=MAX_NOTE)

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decision"].choices = [(d, d) for d in ALLOWED[kind]]


class DraftForm(forms.Form):
    decision = forms.CharField(required=False, max_length=8)
    edited_text = forms.CharField(required=False, strip=False, max_length=200_000)
    note = forms.CharField(required=False, max_length=MAX_NOTE)


class TaskIdsField(forms.Field):
    """Task ids from checkboxes named "task" (which of them exist and may take the decision is the
    service's to say)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        if not all(str(v).isdigit() for v in values):
            raise forms.ValidationError("Task ids are whole numbers.")
        return sorted({int(v) for v in values})


class BulkForm(DecisionForm):
    task = TaskIdsField(error_messages={"required": "Select some tasks first."})

    def clean_task(self):
        ids = self.cleaned_data["task"]
        if len(ids) > MAX_BULK:
            raise forms.ValidationError(f"At most {MAX_BULK} tasks at once, got {len(ids)}.")
        return ids
