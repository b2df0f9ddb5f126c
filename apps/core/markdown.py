"""Untrusted text (LLM answers, rewrites, rationales) as safe HTML: markdown rendered server-side, then
sanitised.

Two layers, each enough on its own for the common attacks:
1. markdown-it-py with raw HTML turned off: `<script>` in the source comes out as the text "&lt;script&gt;";
   its own link check already refuses `javascript:`, `vbscript:`, `file:` and most `data:` URLs.
2. nh3 (the ammonia sanitiser) with a small allow-list of tags and attributes: anything the renderer
   emits outside it is dropped (images too: an answer shows no remote pixels), and a link keeps its
   href only when it is an absolute http(s) or mailto URL, with rel="noopener noreferrer nofollow".
"""

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# A long answer renders in a few milliseconds; anything past this is cut (with a note) before rendering.
MAX_CHARS = 200_000

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
        "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
_ABSOLUTE = ("http://", "https://", "mailto:")

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def _image_as_text(renderer, tokens, idx, options, env) -> str:
    """An image is shown as its description, never loaded: no remote pixels, no data: payloads."""
    alt = renderer.renderInlineAsText(tokens[idx].children or [], options, env)
    return f"[image: {escape(alt)}]" if alt else "[image]"


_renderer.add_render_rule("image", _image_as_text)


def _only_absolute_links(tag: str, attribute: str, value: str) -> str | None:
    """Keep an href only when it is an absolute URL of an allowed scheme: a relative link in an LLM's
    answer would point into this site."""
    if tag == "a" and attribute == "href":
        return value if value.strip().lower().startswith(_ABSOLUTE) else None
    return value


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_only_absolute_links,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(text: str | None) -> SafeString:
    """`text` as sanitised HTML, safe to put in a page as it is."""
    text = text or ""
    cut = len(text) > MAX_CHARS
    if cut:
        text = text[:MAX_CHARS]
    html = sanitize_html(_renderer.render(text))
    if cut:
        html += f'<p class="muted small">(cut at {MAX_CHARS:,} characters)</p>'
    return mark_safe(html)  # noqa: S308 - nh3 has just sanitised it against the allow-list above
