"""Rendering: templates, premailer once per audience variant, final bytes, text part."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import premailer
import pytest

from pressroom.delivery.ledger import last_sent
from pressroom.digest.issue import build_issue
from pressroom.digest.render import feed_cta_html, inline, on_colour, render
from pressroom.errors import TemplateError
from pressroom.models import FIELDS, Personaliser, token, unfilled
from tests.digest_helpers import NOW, article, load_config

VALUES = {
    "name": "Ada <Lovelace>",
    "email": "ada@example.com",
    "unsubscribe_url": "https://news.example/unsubscribe?t=abc&list=weekly",
    "preferences_url": "https://news.example/preferences?t=abc",
    "view_online_url": "https://news.example/issues/1/",
}


def rendered_for(tmp_path: Path, n: int = 4, **kw: str):  # type: ignore[no-untyped-def]
    cfg = load_config(tmp_path, **kw)
    issue = build_issue(
        cfg, [article(i, image=i % 2 == 0) for i in range(n)], now=NOW, last_sent=None
    )
    return cfg, issue, render(issue, cfg)


def test_premailer_traps_are_real_and_handled() -> None:
    page = (
        "<!doctype html><html><head><style>.a{color:red}"
        "@media (max-width:600px){.a{color:blue !important}}</style></head>"
        '<body><p class="a"><a href="{{ unsubscribe_url }}">u</a>'
        f'<a href="{token("unsubscribe_url")}">t</a></p></body></html>'
    )
    plain = premailer.transform(page, allow_network=False)
    assert not plain.lower().startswith("<!doctype html>")  # trap 1: doctype dropped
    assert "!important" not in plain  # trap 2: !important stripped inside @media
    assert 'href="{{%20unsubscribe_url%20}}"' in plain  # trap 3: placeholder URL-escaped
    ours = inline(page)
    assert ours.startswith("<!doctype html>\n")
    assert "color:blue !important" in ours.replace(": ", ":")
    assert f'href="{token("unsubscribe_url")}"' in ours


def test_final_html_is_a_real_newsletter(tmp_path: Path) -> None:
    _cfg, issue, rendered = rendered_for(tmp_path)
    html = rendered.variants[0].html
    assert html.startswith('<!doctype html>\n<html lang="en"')
    doc = lxml.html.document_fromstring(html)
    tables = doc.findall(".//table")
    assert tables and all(t.get("role") == "presentation" for t in tables)
    assert doc.find(".//table[@class='container']").get("width") == "600"
    assert 'name="color-scheme" content="light dark"' in html
    assert "<!--[if mso]>" in html and "<![endif]-->" in html
    assert "display:flex" not in html.replace(" ", "") and "grid" not in html
    # @media rules stay in <style>, with !important kept so they beat the inline styles
    style = doc.find(".//head/style").text
    assert "@media only screen and (max-width: 620px)" in style
    assert "@media (prefers-color-scheme: dark)" in style
    assert re.search(r"\.container \{\s*width: 100% !important", style)
    # class rules were inlined
    title = doc.xpath("//a[contains(@class,'lead-title')]")[0]
    assert "font-size:28px" in title.get("style").replace(" ", "")
    # hidden preheader carries the preheader text
    pre = doc.find(".//div[@class='preheader']")
    assert "display:none" in pre.get("style") and pre.text_content().startswith(issue.preheader)
    for img in doc.iter("img"):
        assert img.get("alt") is not None and img.get("src").startswith("https://")
        assert img.get("width") not in (None, "auto") and img.get("height") != "auto"
    assert "Story number 0 &amp; more" in html  # autoescaped
    footer = doc.find(".//td[@class='pad text sans footer']").text_content()
    assert "1 Example Street, Springfield" in footer and "Unsubscribe" in footer


def test_tokens_survive_and_every_placeholder_fills(tmp_path: Path) -> None:
    _cfg, _issue, rendered = rendered_for(tmp_path)
    for variant in rendered.variants:
        for part, is_html in ((variant.html, True), (variant.text, False)):
            p = Personaliser(part, is_html=is_html)
            assert {"email", "unsubscribe_url", "preferences_url", "view_online_url"} <= p.fields
            filled = p.fill(VALUES)
            assert unfilled(filled) == []
            assert "%%" not in filled
        html = Personaliser(variant.html, is_html=True).fill(VALUES)
        assert 'href="https://news.example/unsubscribe?t=abc&amp;list=weekly"' in html
        text = Personaliser(variant.text, is_html=False).fill(VALUES)
        assert "Unsubscribe: https://news.example/unsubscribe?t=abc&list=weekly" in text


def test_audience_variants_hide_the_block_for_supporters(tmp_path: Path) -> None:
    _cfg, _issue, rendered = rendered_for(tmp_path)
    assert [v.key for v in rendered.variants] == ["all", "without:patreon"]
    everyone, patrons = rendered.variants
    assert 'data-cta="patreon"' in everyone.html and "Become a patron" in everyone.text
    assert 'data-cta="patreon"' not in patrons.html and "Become a patron" not in patrons.text
    assert rendered.variant_for(frozenset({"patron", "vip"})) is patrons
    assert rendered.variant_for(frozenset()) is everyone


TWO_HIDDEN = """\
  - kind: patreon
    url: https://www.patreon.com/example
    headline: Patreon
    hide_for_tags: [patron]
  - kind: github-sponsors
    url: https://github.com/sponsors/example
    headline: Sponsor
    position: top
    hide_for_tags: [sponsor, patron]
  - kind: buymeacoffee
    url: https://buymeacoffee.com/example
    headline: Coffee
    position: after:1
"""


def test_variants_cover_each_combination_and_positions(tmp_path: Path) -> None:
    _cfg, _issue, rendered = rendered_for(tmp_path, cta=TWO_HIDDEN)
    assert sorted(v.key for v in rendered.variants) == sorted(
        ["all", "without:patreon", "without:github-sponsors", "without:github-sponsors+patreon"]
    )
    assert rendered.variant_for(frozenset({"patron"})).key == "without:github-sponsors+patreon"
    assert rendered.variant_for(frozenset({"sponsor"})).key == "without:github-sponsors"
    html = rendered.variants[0].html
    pos = {
        name: html.index(f'data-cta="{name}"')
        for name in ("patreon", "github-sponsors", "buymeacoffee")
    }
    first, second = html.index("story-0/?"), html.index("story-1/?")
    assert pos["github-sponsors"] < first < pos["buymeacoffee"] < second < pos["patreon"]
    # yellow Buy Me a Coffee button gets dark text, coral Patreon too, dark pink white
    assert on_colour("#FFDD00") == "#111111" and on_colour("#BF3989") == "#ffffff"
    doc = lxml.html.document_fromstring(html)
    coffee = doc.xpath('//table[@data-cta="buymeacoffee"]//td[@bgcolor]/a')[0]
    sponsor = doc.xpath('//table[@data-cta="github-sponsors"]//td[@bgcolor]/a')[0]
    # cssutils shortens colours while inlining (#111111 -> #111)
    assert re.search(r";color:#111(111)?;", coffee.get("style").replace(" ", ""))
    assert re.search(r";color:#fff(fff)?;", sponsor.get("style").replace(" ", "").lower())


def test_utm_on_article_and_cta_links_and_switch_off(tmp_path: Path) -> None:
    _cfg, _issue, rendered = rendered_for(tmp_path, digest='utm:\n  campaign: "weekly-{number}"')
    html = rendered.variants[0].html
    assert (
        'href="https://news.example/story-1/?utm_source=newsletter&amp;utm_medium=email'
        '&amp;utm_campaign=weekly-1&amp;utm_content=story-1"' in html
    )
    assert (
        "https://www.patreon.com/example?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=weekly-1&amp;utm_content=patreon"
        in html
    )
    assert (
        "Read more: https://news.example/story-1/?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-1&utm_content=story-1"
        in rendered.variants[0].text
    )
    _cfg, _issue, off = rendered_for(tmp_path / "off", digest="utm:\n  enabled: false")
    assert "utm_" not in off.variants[0].html and "utm_" not in off.variants[0].text


def test_text_part_reads_at_72_columns_with_links_written_out(tmp_path: Path) -> None:
    long_summary = "A long summary that goes on and on about the week's events " * 4
    cfg = load_config(tmp_path)
    issue = build_issue(
        cfg, [article(0, summary=long_summary), article(1)], now=NOW, last_sent=None
    )
    text = render(issue, cfg).variants[0].text
    for line in text.splitlines():
        assert len(line) <= 72 or "https://" in line, line
    assert "Story number 0 & more" in text  # not HTML-escaped in text
    assert "<" not in text.replace("<b>", "")
    for a in issue.articles:
        assert a.url in text
    assert "Become a patron: https://www.patreon.com/example?" in text
    assert "1 Example Street, Springfield" in text
    assert "\n\n\n" not in text and text.endswith("\n")


def test_publication_templates_override_defaults_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "_cta.html.j2").write_text(
        '<tr><td data-cta="{{ cta.name }}">OUR OWN BLOCK {{ cta.headline }}'
        ' <a href="{{ cta.url }}">go</a></td></tr>\n',
        encoding="utf-8",
    )
    _cfg, _issue, rendered = rendered_for(tmp_path)
    html = rendered.variants[0].html
    assert "OUR OWN BLOCK Help us grow." in html
    assert "Read more" in html  # the rest still comes from the packaged defaults


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "<tr><td>{% if cta.name %}oops</td></tr>\n",
            r"_cta.html.j2:1: template syntax error: .*endif",
        ),
        ("<tr>\n<td>{{ cta.nmae }}</td></tr>\n", r"_cta.html.j2:2: template error: .*nmae"),
    ],
)
def test_template_errors_name_file_and_line(tmp_path: Path, source: str, expected: str) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "_cta.html.j2").write_text(source, encoding="utf-8")
    with pytest.raises(TemplateError, match=expected):
        rendered_for(tmp_path)


def test_feed_cta_html(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    block = feed_cta_html(cfg)
    assert block is not None
    doc = lxml.html.fragment_fromstring(block)
    assert doc.get("data-cta") == "patreon"
    link = doc.find(".//a")
    assert link.text == "Become a patron"
    assert link.get("href").startswith("https://www.patreon.com/example?utm_source=")
    assert feed_cta_html(load_config(tmp_path / "none", cta="")) is None


def test_feed_items_support_link_says_it_came_from_a_feed(demo: Path) -> None:
    import json
    from urllib.parse import parse_qs, urlsplit

    from click.testing import CliRunner

    from pressroom.cli import main

    cfg = demo / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    text = text.replace("  cta: false ", "  cta: true ").replace(
        "source: newsletter", "source: duran"
    )
    cfg.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(cfg), "feeds", "--now", "2026-11-25T09:00"])
    assert result.exit_code == 0, result.output
    items = json.loads((demo / "public" / "feeds" / "feed.json").read_text(encoding="utf-8"))
    content = items["items"][0]["content_html"]
    href = lxml.html.fragment_fromstring(content, create_parent="div").xpath(
        '//aside[@data-cta="patreon"]//a/@href'
    )
    assert href, content
    query = parse_qs(urlsplit(href[0]).query)
    assert query["utm_medium"] == ["feed"]
    assert query["utm_source"] == ["duran"]  # the configured source
    assert query["utm_campaign"] == ["feed"]


def test_every_field_has_a_token_in_the_html(tmp_path: Path) -> None:
    """A template change that drops a field must be deliberate."""
    _cfg, _issue, rendered = rendered_for(tmp_path)
    html = rendered.variants[0].html
    for name in FIELDS:
        if name != "name":
            assert token(name) in html


def test_sections_have_headings_in_both_parts(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, digest="sections: true")
    arts = [article(0), article(1, categories=("Politics",)), article(2), article(3, categories=())]
    rendered = render(build_issue(cfg, arts, now=NOW, last_sent=None), cfg).variants[0]
    doc = lxml.html.document_fromstring(rendered.html)
    headings = [td.text_content() for td in doc.xpath("//td[contains(@class,'section-title')]")]
    assert headings == ["Politics", "World", "More"]
    assert "== POLITICS ==" in rendered.text and "== MORE ==" in rendered.text
    assert rendered.text.index("== POLITICS ==") < rendered.text.index("Story number 1")


def test_missing_template_is_a_template_error(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "_footer.html.j2").write_text(
        '{% include "_sponsors.html.j2" %}\n', encoding="utf-8"
    )
    with pytest.raises(
        TemplateError, match=r"_footer.html.j2:1: template _sponsors.html.j2 not found"
    ):
        rendered_for(tmp_path)


def test_a_template_that_is_not_utf8_is_named_where_it_is_used(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "_footer.html.j2").write_bytes(b"caf\xe9\n")
    with pytest.raises(
        TemplateError, match=r"digest.html.j2:\d+: a template used here is not UTF-8"
    ):
        rendered_for(tmp_path)


def test_personalised_text_part_stays_within_72_columns(demo: Path) -> None:
    from datetime import datetime

    from pressroom import config as config_mod
    from pressroom.digest.prepare import prepare

    cfg = config_mod.load(demo / "config.yaml")
    prepared = prepare(
        cfg,
        datetime(2026, 11, 25, 9, 0, tzinfo=cfg.publication.tz),
        last_sent=last_sent(cfg.state_db),
    )
    address = "firstname.lastname-1984@mail.example.org"
    assert len(address) == 40  # a realistic long address
    values = {
        "name": "Bartholomew Featherstonehaugh-Smythe",
        "email": address,
        "unsubscribe_url": "https://theduran.example/unsubscribe?t=" + "a" * 60,
        "preferences_url": "https://theduran.example/preferences?t=" + "b" * 60,
        "view_online_url": "https://theduran.example/issues/1/",
    }
    for variant in prepared.rendered.variants:
        text = Personaliser(variant.text, is_html=False).fill(values)
        assert address in text and unfilled(text) == []
        # a URL cannot be broken without breaking the link; every other line must fit
        too_long = [line for line in text.splitlines() if len(line) > 72 and "://" not in line]
        assert too_long == [], variant.key


# A template is the publisher's code; only a handful of exception types were turned into a
# one-line error, so {{ a // 0 }} or a float overflow ended `digest build` in a traceback
@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("{{ 1 // (issue.articles | length - issue.articles | length) }}", "by zero"),
        ("{{ 10.0 ** 1000 }}", "out of range"),
        ("{{ [issue.number] | first | string | int // 0 }}", "by zero"),
    ],
)
def test_whatever_a_template_raises_is_one_line_naming_file_and_line(
    demo: Path, expression: str, said: str
) -> None:
    from click.testing import CliRunner

    from pressroom.cli import main

    template = demo / "templates" / "digest.txt.j2"
    lines = template.read_text(encoding="utf-8").count("\n")
    with template.open("a", encoding="utf-8") as f:
        f.write(expression + "\n")
    result = CliRunner().invoke(
        main,
        ["--config", str(demo / "config.yaml"), "digest", "build", "--now", "2026-11-25T09:00"],
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"digest.txt.j2:{lines + 1}: template error: " in error and said in error, error
    assert not (demo / "public" / "issues" / "1").exists()
