from django import forms

from apps.llm.models import LLMEndpoint
from apps.llm.services import ENDPOINT_FIELDS
from workers.llm.keys import ALLOW_LIST_VAR


class EndpointForm(forms.ModelForm):
    """The fields of an endpoint. There is deliberately no field for a key: only the name of the
    environment variable that holds it on the workers. Only administrators choose that variable, or move
    an endpoint that sends a key (the service enforces it; the form shows it)."""

    base_url = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        label="Base URL",
        help_text="OpenAI-compatible endpoints only, e.g. https://api.openai.com/v1 or http://gpu-box:8000/v1.",
    )
    model = forms.CharField(
        max_length=200,
        required=False,
        help_text="The model name sent with each request. Required for OpenAI-compatible endpoints; "
        "offline backends answer from their dataset and may leave it empty.",
    )
    max_concurrency = forms.IntegerField(min_value=1, initial=8, label="Max concurrency")
    timeout_s = forms.FloatField(min_value=0.1, initial=120.0, label="Timeout (s)")

    class Meta:
        model = LLMEndpoint
        fields = list(ENDPOINT_FIELDS)
        widgets = {
            "default_params": forms.Textarea(attrs={"rows": 3}),
            "terms_of_use": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {
            "api_key_env": "API key environment variable",
            "requests_per_minute": "Requests per minute",
            "tokens_per_minute": "Tokens per minute",
            "price_input_per_mtok": "Price per million input tokens ($)",
            "price_output_per_mtok": "Price per million output tokens ($)",
            "offline_dataset": "Offline dataset",
            "terms_of_use": "Terms of use",
            "terms_restrict_training": "The terms restrict training on its output",
        }
        help_texts = {
            "api_key_env": "A variable ending in _API_KEY (e.g. OPENAI_API_KEY), or one listed in "
            f"{ALLOW_LIST_VAR} where Retort runs. Leave empty for servers that need no key.",
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None and not user.is_superuser:
            sends_key = bool(self.instance.pk and self.instance.api_key_env)
            field = self.fields["api_key_env"]
            field.disabled = True
            field.help_text = "Only an administrator may choose the key variable: the key is sent to the base URL."
            if sends_key:
                self.fields["base_url"].disabled = True
                self.fields["base_url"].help_text = (
                    "Only an administrator may move an endpoint that sends an API key: the key would go to "
                    "the new address."
                )

    def clean(self):
        data = super().clean()
        backend = data.get("backend")
        if backend == LLMEndpoint.Backend.OPENAI and not data.get("model"):
            self.add_error("model", "An OpenAI-compatible endpoint needs the model name it serves.")
        return data
