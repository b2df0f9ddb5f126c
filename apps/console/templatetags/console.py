"""Template helpers of the console pages."""

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.simple_tag
def review_queue_url(kind: str, round_id: int | None = None) -> str:
    """The review queue of a gate's kind, filtered to its round, or "" while no queue page answers to the
    URL name 'reviews:queue' (the review app's pages may not be installed)."""
    url = ""
    for attempt in ({"kwargs": {"kind": kind}}, {"args": [kind]}, {}):
        try:
            url = reverse("reviews:queue", **attempt)
        except NoReverseMatch:
            continue
        if not attempt:  # a queue page without the kind in its path takes it as a filter
            url += f"?kind={kind}"
        break
    if url and round_id is not None:
        url += ("&" if "?" in url else "?") + f"round={int(round_id)}"
    return url


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.4213 -> "42.1%"; None -> "–"."""
    if value is None or value == "":
        return "–"
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def fraction_of(done, total) -> int:
    """done/total as a whole percentage for a progress bar (0 when total is 0)."""
    try:
        return min(100, max(0, round(100 * int(done) / int(total)))) if int(total) else 0
    except (TypeError, ValueError):
        return 0
