"""Benchmark: build + render one issue (premailer included), personalise it for 100,000.

Prints time per issue, per-subscriber cost and subscribers/s, beside a naive baseline that
re-renders and re-inlines the issue for every subscriber (measured on a few hundred and
extrapolated). Targets (issue 3): issue build ≤ 0.5 s; personalisation ≥ 50,000
subscribers/s; ≥ 100x faster than the naive baseline.

    .venv/bin/python bench/digest.py [--subscribers 100000] [--naive 300]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pressroom import config as config_mod
from pressroom.content.text import render_body
from pressroom.digest.issue import build_issue
from pressroom.digest.render import (
    environment,
    inline,
    render,
    render_template,
    template_context,
    tidy_text,
)
from pressroom.models import Article, Author, Image, Personaliser

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def demo_config(folder: Path) -> config_mod.Config:
    """The demo publication's config.yaml without its sources (articles are made here)."""
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^sources:\n.*?(?=^\S)", "sources: []\n\n", text)
    text = text.replace("templates: templates", f"templates: {REPO / 'templates'}")
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return config_mod.load(path)


def articles(n: int) -> list[Article]:
    paragraph = (
        "A summary of the kind an editor writes: two or three sentences about what happened, "
        "why it matters and what comes next for the people involved. "
    )
    return [
        Article(
            id=f"https://theduran.example/story-{i}/",
            url=f"https://theduran.example/story-{i}/",
            slug=f"story-{i}",
            title=f"Story {i}: a headline of ordinary length for a weekly digest",
            published=NOW - timedelta(hours=3 + 11 * i),
            updated=None,
            authors=(Author("Alex Christoforou"),),
            categories=("World", "Politics")[i % 2 : i % 2 + 1],
            tags=(),
            summary=paragraph * 2,
            image=Image(
                f"https://theduran.example/img/{i}.jpg", f"Photo {i}", width=1200, height=675
            ),
            body="",
            body_format="text",
            base_url="https://theduran.example/",
            source=f"bench/{i}",
            renderer=render_body,
        )
        for i in range(n)
    ]


def values_for(i: int) -> dict[str, str]:
    return {
        "name": f"Subscriber {i}",
        "email": f"subscriber{i}@example.com",
        "unsubscribe_url": f"https://theduran.example/unsubscribe?t=Zm9vYmFy{i:08d}.c2lnbmF0dXJl",
        "preferences_url": f"https://theduran.example/unsubscribe?t=Zm9vYmFy{i:08d}.c2lnbmF0dXJl",
        "view_online_url": "https://theduran.example/issues/1/",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscribers", type=int, default=100_000, help="subscribers to personalise"
    )
    parser.add_argument("--naive", type=int, default=300, help="subscribers for the naive baseline")
    parser.add_argument("--articles", type=int, default=10, help="articles in the issue")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cfg = demo_config(Path(tmp))
        arts = articles(args.articles)

        # 1. build + render (premailer once per audience variant); best of 5 after a warm-up
        build_issue(cfg, arts, now=NOW, last_sent=None)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            issue = build_issue(cfg, arts, now=NOW, last_sent=None)
            rendered = render(issue, cfg)
            times.append(time.perf_counter() - t0)
        build_s = min(times)

        # 2. personalise for every subscriber, in memory (both parts, each one's variant)
        t0 = time.perf_counter()
        compiled = {
            v.key: (Personaliser(v.html, is_html=True), Personaliser(v.text, is_html=False))
            for v in rendered.variants
        }
        patron = frozenset({"patron"})
        nobody: frozenset[str] = frozenset()
        total_bytes = 0
        for i in range(args.subscribers):
            variant = rendered.variant_for(patron if i % 10 == 0 else nobody)
            html_p, text_p = compiled[variant.key]
            values = values_for(i)
            total_bytes += len(html_p.fill(values)) + len(text_p.fill(values))
        personalise_s = time.perf_counter() - t0
        per_sub = personalise_s / args.subscribers

        # 3. naive baseline: render the templates with the values baked in and premailer
        # every message (what "render once" avoids)
        env = environment(cfg)
        t0 = time.perf_counter()
        for i in range(args.naive):
            values = values_for(i)
            ctx = template_context(cfg, issue, issue.ctas, issue.number)
            env.filters["utm"] = ctx.pop("utm")
            ctx["subscriber"] = {"name": values["name"], "email": values["email"]}
            for key in ("unsubscribe_url", "preferences_url", "view_online_url"):
                ctx[key] = values[key]
            inline(render_template(env, "digest.html.j2", ctx))
            tidy_text(render_template(env, "digest.txt.j2", ctx))
        naive_per_sub = (time.perf_counter() - t0) / args.naive

    rate = args.subscribers / personalise_s
    speedup = naive_per_sub / per_sub
    html_kb = statistics.mean(len(v.html.encode()) for v in rendered.variants) / 1024

    def verdict(ok: bool) -> str:
        return "OK" if ok else "MISSED"

    print(
        f"issue: {args.articles} articles, {len(rendered.variants)} variants, HTML {html_kb:.1f} KB"
    )
    print(
        f"build + render (premailer per variant): {build_s * 1000:8.1f} ms"
        f"   target ≤ 500 ms   {verdict(build_s <= 0.5)}"
    )
    print(
        f"personalise {args.subscribers:,} subscribers: {personalise_s:8.2f} s"
        f" ({per_sub * 1e6:.2f} µs each, {rate:,.0f}/s)"
        f"   target ≥ 50,000/s   {verdict(rate >= 50_000)}"
    )
    print(
        f"naive baseline (render + premailer each): {naive_per_sub * 1000:8.2f} ms each,"
        f" measured on {args.naive}; {args.subscribers:,} would take"
        f" {naive_per_sub * args.subscribers / 60:.1f} min"
    )
    print(f"speed-up over naive: {speedup:,.0f}x   target ≥ 100x   {verdict(speedup >= 100)}")
    print(f"(personalised output: {total_bytes / 1e9:.2f} GB of parts)")
    ok = build_s <= 0.5 and rate >= 50_000 and speedup >= 100
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
