from django import forms

from apps.llm.models import LLMEndpoint
from apps.llm.services import ENDPOINT_FIELDS


class EndpointForm(forms.ModelForm):
    """The fields of an endpoint. There is deliberately no field for a key: only the name of the
    environment variable that holds it on the workers."""

    base_url = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="e.g. https://api.openai.com/v1 or http://gpu-box:8000/v1",
    )

    class Meta:
        model = LLMEndpoint
        fields = list(ENDPOINT_FIELDS)
        widgets = {"default_params": forms.Textarea(attrs={"rows": 3})}
        labels = {"api_key_env": "API key environment variable"}
