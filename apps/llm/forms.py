from django import forms

from apps.llm.models import LLMEndpoint
from apps.llm.services import ENDPOINT_FIELDS


class EndpointForm(forms.ModelForm):
    """The fields of an endpoint. There is deliberately no field for a key: only the name of the
    environment variable that holds it on the workers."""

    class Meta:
        model = LLMEndpoint
        fields = list(ENDPOINT_FIELDS)
        widgets = {"default_params": forms.Textarea(attrs={"rows": 3})}
        labels = {"api_key_env": "API key environment variable"}

