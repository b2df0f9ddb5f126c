"""Keep API keys out of every string we store, show or log.

Providers echo keys back in error bodies (often partly masked), and exception texts can carry headers.
Everything the client turns into an error message passes through `redact` first.
"""

import os
import re

# Shapes that look like bearer secrets: OpenAI-style `sk-…`, and whatever follows "Bearer".
_KEY_SHAPES = [
    re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-*~+/=]{6,}"),
    re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-*]{6,}"),
]
MASK = "[redacted]"


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        # Short placeholders ("no-key") are not secrets, and masking them would mangle ordinary words.
        if secret and len(secret) >= 8:
            text = text.replace(secret, MASK)
            # A provider may echo only the start and end of a key: mask those fragments too.
            text = text.replace(secret[:8], MASK).replace(secret[-6:], MASK)
    text = _KEY_SHAPES[0].sub(MASK, text)
    text = _KEY_SHAPES[1].sub(lambda m: m.group(1) + MASK, text)
    return _KEY_SHAPES[2].sub(lambda m: m.group(1) + MASK, text)


def redact_env(text: str, *env_names: str) -> str:
    """Redact the values of the named environment variables (the keys this process knows)."""
    return redact(text, *(os.environ.get(name, "") for name in env_names if name))
