"""Template filters shared by every app's pages."""

import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """A JSON value as indented JSON text (not Python's repr). Autoescaping still applies to the result."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
