"""Untrusted markdown renders inert: no element, attribute or URL from the text can run code or load
anything; ordinary markdown still renders."""

import re
from html.parser import HTMLParser

import pytest
from django.template import Context, Template

from apps.core.markdown import render_markdown, sanitize_html

ATTACKS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<svg onload=alert(1)><circle r=1 /></svg>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( javascript:alert(1) )",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](data:image/png;base64,iVBORw0KGgo=)",
    "![pixel](https://tracker.example/p.gif)",
    '<p style="background:url(javascript:alert(1))">styled</p>',
    "<form action=https://evil.example><button>go</button></form>",
    "<!-- <script>alert(1)</script> -->",
]


class _Elements(HTMLParser):
    """The elements and attributes a browser would build from the HTML (text stays text)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]


def _parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser


@pytest.mark.parametrize("text", ATTACKS)
def test_an_attack_renders_as_text_with_no_live_element_or_url(text):
    html = str(render_markdown(text))
    found = _parse(html)
    assert found.tags <= {"p", "a", "code", "pre"}, html
    assert {name for _, name, _ in found.attributes} <= {"href", "rel", "title"}, html
    for _tag, name, value in found.attributes:
        if name == "href":
            assert value.startswith(("http://", "https://", "mailto:")), html
    assert not re.search(r"<(script|img|iframe|svg|form|style)", html, re.I), html


def test_the_text_of_an_attack_stays_readable():
    html = str(render_markdown("<script>alert('x')</script>"))
    assert html == "<p>&lt;script&gt;alert('x')&lt;/script&gt;</p>\n"


def test_images_are_shown_as_their_description_and_never_loaded():
    html = str(render_markdown("![a <b>cat</b>](https://example.com/cat.png) and ![](data:image/png;base64,AA)"))
    assert html == "<p>[image: a &lt;b&gt;cat&lt;/b&gt;] and [image]</p>\n"


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("[docs](https://docs.example/a?b=1)", "https://docs.example/a?b=1"),
        ("[site](http://plain.example)", "http://plain.example"),
        ("[mail](mailto:someone@example.com)", "mailto:someone@example.com"),
        ("<https://auto.example/x>", "https://auto.example/x"),
    ],
)
def test_markdown_links_to_allowed_schemes_keep_their_href_and_get_rel(text, href):
    html = str(render_markdown(text))
    assert f'href="{href}"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_a_relative_link_loses_its_href():
    html = str(render_markdown("[admin](/admin/) [up](../x)"))
    assert "href" not in html and ">admin</a>" in html and ">up</a>" in html


def test_the_sanitiser_alone_strips_what_the_renderer_would_never_emit():
    # The second layer on its own, as if markdown-it had let raw HTML through.
    dirty = (
        '<p onclick="x()">hi <img src=x onerror=alert(1)><script>alert(1)</script>'
        '<iframe srcdoc="<b>x</b>"></iframe><a href="javascript:alert(1)">j</a>'
        '<a href="data:text/html,x">d</a><a href="/local">l</a><a href="https://ok.example" target="_blank">ok</a></p>'
    )
    clean = sanitize_html(dirty)
    assert clean == (
        '<p>hi <a rel="noopener noreferrer nofollow">j</a><a rel="noopener noreferrer nofollow">d</a>'
        '<a rel="noopener noreferrer nofollow">l</a>'
        '<a href="https://ok.example" rel="noopener noreferrer nofollow">ok</a></p>'
    )


def test_ordinary_markdown_renders():
    text = (
        "# Title\n\n**bold**, *it*, ~~gone~~ and `code`\n\n- one\n- two\n\n"
        "```\nprint(1 < 2)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    html = str(render_markdown(text))
    for fragment in (
        "<h1>Title</h1>",
        "<strong>bold</strong>",
        "<em>it</em>",
        "<s>gone</s>",
        "<code>code</code>",
        "<li>one</li>",
        "<pre><code>print(1 &lt; 2)\n</code></pre>",
        "<th>a</th>",
        "<td>2</td>",
    ):
        assert fragment in html, (fragment, html)


def test_very_long_text_is_cut_with_a_note():
    html = str(render_markdown("a" * 250_000))
    assert "(cut at 200,000 characters)" in html and html.count("a") >= 200_000


def test_the_template_filter_renders_safely_and_takes_none():
    template = Template("{% load llm_text %}<div>{{ text|markdown }}</div><div>{{ nothing|markdown }}</div>")
    out = template.render(Context({"text": "**hi** <script>x</script>", "nothing": None}))
    assert out == "<div><p><strong>hi</strong> &lt;script&gt;x&lt;/script&gt;</p>\n</div><div></div>"
