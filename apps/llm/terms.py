"""What providers' terms say about training on their models' output, as exports need to know it.

An endpoint records its own terms (LLMEndpoint.terms_of_use, terms_restrict_training). For the few
providers below whose published terms forbid using output to build competing models, an endpoint that
points at them and records nothing is still flagged: the summaries are ours, and a provider's current
terms are what count.
"""

from urllib.parse import urlsplit

KNOWN_RESTRICTIVE = {
    "api.openai.com": "OpenAI's terms of use forbid using output to develop models that compete with OpenAI.",
    "api.anthropic.com": "Anthropic's terms forbid using its services or output to build competing products or "
    "to train competing AI models.",
    "generativelanguage.googleapis.com": "The Gemini API terms forbid using the service to develop models that "
    "compete with it.",
}


def known_terms(base_url: str) -> str | None:
    """Our summary of a known provider's terms on training with its output, if its host is one we know."""
    host = (urlsplit(base_url or "").hostname or "").lower()
    return KNOWN_RESTRICTIVE.get(host)


def endpoint_terms(endpoint) -> dict:
    """{endpoint, model, terms, restricts_training, source} for an LLMEndpoint: what it records, else
    what we know of its provider (source "known provider"), else nothing known (source "not recorded")."""
    recorded = (endpoint.terms_of_use or "").strip()
    known = None if endpoint.is_offline else known_terms(endpoint.base_url)
    if recorded or endpoint.terms_restrict_training:
        terms, source = recorded or (known or ""), "recorded"
        restricts = bool(endpoint.terms_restrict_training)
    elif known:
        terms, source, restricts = known, "known provider", True
    else:
        terms, source, restricts = "", "offline backend" if endpoint.is_offline else "not recorded", False
    return {
        "endpoint": endpoint.name,
        "model": endpoint.model,
        "terms": terms,
        "restricts_training": restricts,
        "source": source,
    }
