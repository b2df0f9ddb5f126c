"""Template helpers of the review pages."""

from django import template

from apps.console.review_diff import word_diff as _word_diff

register = template.Library()


@register.simple_tag
def word_diff(before, after):
    """`{% word_diff original rewrite %}`: the word-level diff, escaped, with <ins> and <del>."""
    return _word_diff(before or "", after or "")
