"""Preflight: each check fires on a real defect in the final bytes; a good issue passes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pressroom.digest.issue import build_issue
from pressroom.digest.preflight import Finding, check, has_errors
from pressroom.digest.render import render
from pressroom.models import RenderedIssue, token
from tests.digest_helpers import NOW, article, load_config


def issue_for(tmp_path: Path, n: int = 3, **kw: str) -> tuple[object, RenderedIssue]:
    cfg = load_config(tmp_path, **kw)
    issue = build_issue(cfg, [article(i) for i in range(n)], now=NOW, last_sent=None)
    return cfg, render(issue, cfg)


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def with_html(rendered: RenderedIssue, change) -> RenderedIssue:  # type: ignore[no-untyped-def]
    variants = tuple(dataclasses.replace(v, html=change(v.html)) for v in rendered.variants)
    return dataclasses.replace(rendered, variants=variants)


def test_a_good_issue_passes(tmp_path: Path) -> None:
    cfg, rendered = issue_for(tmp_path)
    assert check(rendered, cfg) == []  # type: ignore[arg-type]


def test_relative_url_javascript_link_and_missing_alt(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "_header.html.j2").write_text(
        '<tr><td><a href="/about">About</a> <a href="javascript:alert(1)">x</a>'
        ' <img src="logo.png" width="10"></td></tr>\n',
        encoding="utf-8",
    )
    cfg, rendered = issue_for(tmp_path)
    findings = check(rendered, cfg)  # type: ignore[arg-type]
    assert {"relative-url", "javascript-link", "image-no-alt"} <= codes(findings)
    assert has_errors(findings)
    messages = "\n".join(map(str, findings))
    assert "error: relative-url: link /about is not an absolute URL" in messages
    assert "error: relative-url: image logo.png is not an absolute URL" in messages
    assert "error: image-no-alt: image logo.png has no alt text" in messages


def test_missing_unsubscribe_link_and_postal_address(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "_footer.html.j2").write_text(
        "<tr><td>Thanks for reading.</td></tr>\n", encoding="utf-8"
    )
    cfg, rendered = issue_for(tmp_path)
    findings = check(rendered, cfg)  # type: ignore[arg-type]
    assert {"no-unsubscribe", "no-postal-address"} <= codes(findings)
    assert all(
        f.level == "error" for f in findings if f.code in ("no-unsubscribe", "no-postal-address")
    )


def test_empty_postal_address_in_config(tmp_path: Path) -> None:
    cfg, rendered = issue_for(tmp_path)
    cfg = dataclasses.replace(
        cfg, publication=dataclasses.replace(cfg.publication, postal_address="")
    )  # type: ignore[type-var]
    findings = check(rendered, cfg)  # type: ignore[arg-type]
    assert next(f.message for f in findings if f.code == "no-postal-address").startswith(
        "config.yaml:7: publication.postal_address is empty"  # the key's line
    )


def test_unfilled_placeholders_and_empty_text(tmp_path: Path) -> None:
    cfg, rendered = issue_for(tmp_path)
    broken = with_html(rendered, lambda h: h.replace("Read more", "{{ subscriber.firstname }}", 1))
    broken = with_html(broken, lambda h: h.replace("View online", "%%PR_NICKNAME%%", 1))
    variants = (dataclasses.replace(broken.variants[0], text=""), *broken.variants[1:])
    broken = dataclasses.replace(broken, variants=variants)
    findings = check(broken, cfg)  # type: ignore[arg-type]
    assert {"unfilled-placeholder", "no-text-part"} <= codes(findings)
    unfilled = next(f.message for f in findings if f.code == "unfilled-placeholder")
    assert "%%PR_NICKNAME%%" in unfilled and "{{ subscriber.firstname }}" in unfilled


def test_html_over_gmail_clip_limit(tmp_path: Path) -> None:
    cfg, rendered = issue_for(tmp_path)
    big = with_html(rendered, lambda h: h.replace("</body>", "<p>" + "x" * 110_000 + "</p></body>"))
    findings = check(big, cfg)  # type: ignore[arg-type]
    sizes = [f for f in findings if f.code == "html-too-large"]
    assert [f.message.split(";")[0].split("(")[1] for f in sizes] == [
        "variant all)",
        "variant without:patreon)",
    ]
    assert sizes[0].level == "error" and "Gmail clips messages over 102 KB" in sizes[0].message


def test_long_subject_and_missing_preheader_are_warnings(tmp_path: Path) -> None:
    cfg, rendered = issue_for(
        tmp_path, digest='subject: "{{ \'A very long subject line \' * 5 }}"\npreheader: " "'
    )
    findings = check(rendered, cfg)  # type: ignore[arg-type]
    assert codes(findings) == {"long-subject", "no-preheader"}
    assert not has_errors(findings)


def test_configured_cta_that_did_not_render(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    # a digest template that forgets the bottom position
    from pressroom import defaults

    source = (defaults.templates() / "digest.html.j2").read_text(encoding="utf-8")
    (tmp_path / "templates" / "digest.html.j2").write_text(
        source.replace('ctas_at("bottom")', 'ctas_at("nowhere")'), encoding="utf-8"
    )
    cfg, rendered = issue_for(tmp_path)
    findings = check(rendered, cfg)  # type: ignore[arg-type]
    (missing,) = [f for f in findings if f.code == "cta-missing"]
    assert missing.message.startswith(
        "config.yaml:14: support block patreon did not render (variant all)"
    )
    # the variant that hides the block on purpose is not blamed
    assert "without:patreon" not in missing.message


def test_token_only_links_are_not_relative(tmp_path: Path) -> None:
    cfg, rendered = issue_for(tmp_path)
    assert token("unsubscribe_url") in rendered.variants[0].html
    assert "relative-url" not in codes(check(rendered, cfg))  # type: ignore[arg-type]


def test_html_without_the_hidden_preheader(tmp_path: Path) -> None:
    cfg, rendered = issue_for(tmp_path)
    assert rendered.preheader.strip()
    # a custom digest.html.j2 that drops the hidden preheader block
    dropped = with_html(rendered, lambda h: h.replace('class="preheader"', 'class="intro"', 1))
    dropped = with_html(dropped, lambda h: h.replace("display:none", "display:block", 1))
    findings = check(dropped, cfg)  # type: ignore[arg-type]
    (first, *_) = [f for f in findings if f.code == "no-preheader"]
    assert first.level == "warning"
    assert first.message.startswith("the HTML part (variant all) has no hidden preheader")
    assert not has_errors(findings)


def test_text_part_without_the_postal_address(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "_footer.txt.j2").write_text(
        "\nUnsubscribe: {{ unsubscribe_url }}\n", encoding="utf-8"
    )
    cfg, rendered = issue_for(tmp_path)
    findings = check(rendered, cfg)  # type: ignore[arg-type]
    messages = [str(f) for f in findings if f.code == "no-postal-address"]
    assert messages and all("the text part" in m for m in messages)
    assert messages[0].startswith("error: no-postal-address: the text part (variant all)")


def test_postal_address_wrapped_across_lines_in_the_text_part_is_found(tmp_path: Path) -> None:
    from pressroom import config as config_mod
    from tests.digest_helpers import write_config

    address = (
        "The Example Newsroom Ltd, 221B Long Street Name Avenue, Apartment 1234, London, "
        "NW1 6XE, United Kingdom"
    )
    path = write_config(tmp_path)
    path.write_text(
        path.read_text(encoding="utf-8").replace("1 Example Street, Springfield", address),
        encoding="utf-8",
    )
    cfg = config_mod.load(path)
    issue = build_issue(cfg, [article(i) for i in range(3)], now=NOW, last_sent=None)
    rendered = render(issue, cfg)
    assert address not in rendered.variants[0].text  # wrapped at 72 columns
    assert check(rendered, cfg) == []


def test_relative_and_javascript_links_in_the_text_part(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    from pressroom import defaults

    source = (defaults.templates() / "digest.txt.j2").read_text(encoding="utf-8")
    (tmp_path / "templates" / "digest.txt.j2").write_text(
        source.replace(
            "View online: {{ view_online_url }}",
            "View online: {{ view_online_url }}\nAbout us: /about\nTip jar: javascript:tip()\n"
            "Prose with a path (see /r/news, and/or 24/7) is not a link.",
        ),
        encoding="utf-8",
    )
    cfg, rendered = issue_for(tmp_path)
    findings = check(rendered, cfg)  # type: ignore[arg-type]
    messages = "\n".join(map(str, findings))
    assert (
        "error: relative-url: text-part link /about is not an absolute URL (variant all)"
        in messages
    )
    assert "error: javascript-link: text-part link javascript:tip() uses javascript:" in messages
    assert "/r/news" not in messages and "24/7" not in messages


PROSE = (
    "Security primer: never paste javascript: URLs, nor javascript:alert(1), into the "
    "address bar; a data: URI or vbscript:msgbox is no better, and the config file: it "
    "says tel: 555 at 10:30."
)


def test_prose_that_mentions_javascript_in_a_text_article_does_not_block(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    arts = [article(0, summary=PROSE), article(1), article(2)]
    rendered = render(build_issue(cfg, arts, now=NOW, last_sent=None), cfg)
    assert "javascript:alert(1)" in rendered.variants[0].text  # the prose reached the email
    assert check(rendered, cfg) == []


def test_links_placed_in_the_text_part_are_still_checked(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    from pressroom import defaults

    source = (defaults.templates() / "digest.txt.j2").read_text(encoding="utf-8")
    (tmp_path / "templates" / "digest.txt.j2").write_text(
        source.replace(
            "View online: {{ view_online_url }}",
            "View online: {{ view_online_url }}\nvbscript:run()\nSee <data:text/html,x> too.\n"
            "Written out: https://news.example/ok and file:///C:/Users/me/a.html here.",
        ),
        encoding="utf-8",
    )
    cfg, rendered = issue_for(tmp_path)
    messages = "\n".join(map(str, check(rendered, cfg)))  # type: ignore[arg-type]
    assert "text-part link vbscript:run() is not an absolute URL" in messages
    assert "text-part link data:text/html,x is not an absolute URL" in messages
    assert "text-part link file:///C:/Users/me/a.html is not an absolute URL" in messages
    assert "news.example/ok" not in messages
