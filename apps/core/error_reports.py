"""Error reports (the DEBUG page, Django's error e-mails) without LLM API keys.

Django's SafeExceptionReporterFilter hides settings and request headers whose *names* look secret, and a
function's locals only where it is marked @sensitive_variables. An LLM key is neither: its variable may be
named anything the allow-list admits (HF_TOKEN, MY_LLM_CRED), and a crash in code that holds the key (a
connection test, the client) would list it among the frame's locals. This filter also hides every value
that is, or contains, the value of an environment variable that may hold an LLM key.
"""

import os

from django.views.debug import SafeExceptionReporterFilter

from workers.llm import keys

SHORTEST_KEY = 8  # shorter values ("no-key", "1") are placeholders; hiding them would hide ordinary words


def key_values() -> list[str]:
    """The values of this process's environment variables that may hold an LLM key."""
    return [
        value for name, value in os.environ.items() if len(value) >= SHORTEST_KEY and keys.refusal(name.upper()) == ""
    ]


class KeyHidingFilter(SafeExceptionReporterFilter):
    def _hide(self, value, secrets: list[str]):
        if not secrets:
            return value
        try:
            text = value if isinstance(value, str) else repr(value)
        except Exception:  # a repr that fails is the reporter's business, not ours  # noqa: BLE001
            return value
        return self.cleansed_substitute if any(secret in text for secret in secrets) else value

    def cleanse_setting(self, key, value):
        if isinstance(key, str) and keys.refusal(key.upper()) == "":
            return self.cleansed_substitute  # a key variable (request.META under runserver holds os.environ)
        return self._hide(super().cleanse_setting(key, value), key_values())

    def get_traceback_frame_variables(self, request, tb_frame):
        secrets = key_values()
        return [
            (name, self._hide(value, secrets))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
