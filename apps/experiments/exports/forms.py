"""The export page's form: a dataset (with filters) or a round's training set, a format, optional fields."""

from django import forms

from apps.datasets.models import Dataset, Instruction
from apps.experiments.exports.models import FORMAT_CHOICES
from apps.experiments.models import Snapshot


def round_choices() -> list[tuple[str, str]]:
    """Rounds that have a frozen training set, newest first, as '<experiment id>:<index>'."""
    rows = Snapshot.objects.select_related("round__experiment").order_by("-round__experiment_id", "-round__index")
    return [("", "—")] + [
        (f"{s.round.experiment_id}:{s.round.index}", f"{s.round.experiment.name} · round {s.round.index} ({s.size})")
        for s in rows[:200]
    ]


class ExportForm(forms.Form):
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.order_by("name"),
        required=False,
        help_text="A dataset to export (or choose a round below).",
    )
    round = forms.ChoiceField(required=False, help_text="A round's approved training set, exactly as frozen.")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="openai")
    category = forms.CharField(required=False, max_length=64, help_text="Dataset exports: only this category.")
    origin = forms.ChoiceField(required=False, choices=[("", "any origin"), *Instruction.Origin.choices])
    ids = forms.CharField(
        required=False,
        label="Instruction ids",
        help_text="Dataset exports: only these ids, comma-separated.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 12, 15, 40"}),
    )
    provenance = forms.BooleanField(required=False, label="With provenance (origin, seed, round)")
    scores = forms.BooleanField(required=False, label="With judge scores")
    review = forms.BooleanField(required=False, label="With reviewer decisions")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["round"].choices = round_choices()

    def clean_ids(self) -> list[int]:
        text = self.cleaned_data.get("ids") or ""
        try:
            return [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError:
            raise forms.ValidationError("Comma-separated whole numbers, e.g. 12, 15, 40.") from None

    def clean(self):
        data = super().clean()
        if bool(data.get("dataset")) == bool(data.get("round")):
            raise forms.ValidationError("Choose either a dataset or a round.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {"fmt": data["format"], "provenance": data["provenance"], "scores": data["scores"]}
        kwargs["review"] = data["review"]
        if data.get("round"):
            experiment, _, index = data["round"].partition(":")
            return {**kwargs, "experiment": int(experiment), "round_index": int(index)}
        return {
            **kwargs,
            "dataset": data["dataset"],
            "category": data["category"].strip(),
            "origin": data["origin"],
            "ids": data["ids"],
        }
