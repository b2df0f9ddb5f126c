"""`{% load llm_text %}{{ answer.text|markdown }}`: untrusted text rendered as sanitised markdown."""

from django import template

from apps.core.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(value) -> str:
    return render_markdown("" if value is None else str(value))
