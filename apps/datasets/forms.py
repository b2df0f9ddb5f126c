from django import forms

from apps.datasets.formats import FORMATS
from apps.datasets.models import Instruction

FORMAT_CHOICES = [("auto", "detect from the file")] + [
    (f, label)
    for f, label in zip(
        FORMATS,
        [
            "Alpaca JSON array",
            "JSON Lines (Alpaca keys)",
            "ShareGPT (conversations)",
            "OpenAI chat JSONL (messages)",
            "CSV (instruction, input, output)",
            "Parquet",
        ],
        strict=True,
    )
]


class ImportForm(forms.Form):
    file = forms.FileField(help_text="Alpaca JSON, JSON Lines, ShareGPT, OpenAI chat JSONL, CSV or parquet.")
    dataset_name = forms.CharField(max_length=200, help_text="A new dataset, or an existing one to add to.")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="auto")
    license = forms.CharField(
        max_length=200,
        required=False,
        label="Licence",
        help_text="The data's licence, e.g. Apache-2.0 or CC BY-NC 4.0: exports list it and warn when it "
        "restricts use. Recorded on a new dataset, or on one that has none yet.",
    )
    skip_invalid = forms.BooleanField(
        label="Skip invalid records",
        required=False,
        help_text="Import the valid records and report the invalid ones, instead of importing nothing.",
    )


class InstructionFilterForm(forms.Form):
    """The dataset page's filters and its keyset cursor (`after` or `before` an instruction id)."""

    q = forms.CharField(required=False, label="Search", max_length=200, strip=True)
    category = forms.CharField(required=False, max_length=64, label="Task category")
    origin = forms.ChoiceField(
        required=False,
        choices=[("", "any origin"), *Instruction.Origin.choices],
    )
    reference = forms.ChoiceField(
        required=False,
        label="Reference output",
        choices=[("", "with or without"), ("yes", "has one"), ("no", "has none")],
    )
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("after") is not None and data.get("before") is not None:
            raise forms.ValidationError("A page starts after an instruction or ends before one, not both.")
        return data
