"""Benchmark: each HTTP provider adapter sending 100,000 recipients to its fake on 127.0.0.1.

For every provider, a fresh process drives the adapter (batches at the provider's maximum,
one variant of a ~30 KB inlined-CSS issue, every recipient with its own unsubscribe URL and
List-Unsubscribe header) against the provider's fake server, which runs in another process
with contract validation off and counting only. Reported per provider: recipients/s, peak
RSS of the sending process, calls made and the mean payload per call.

Run: .venv/bin/python bench/providers.py [--recipients N] [--workers W] [mailgun ...]
Targets (issue 5): batch providers ≥ 20,000/s; Postmark ≥ 2,000/s; SES bulk ≥ 5,000/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from pressroom.delivery.providers.base import Content, Outcome, Recipient  # noqa: E402
from pressroom.models import RenderedVariant, token  # noqa: E402

PROVIDERS = ("mailgun", "sendgrid", "postmark", "ses")
ENV = {
    "mailgun": {"MAILGUN_API_KEY": "key-bench"},
    "sendgrid": {"SENDGRID_API_KEY": "SG.bench"},
    "postmark": {"POSTMARK_SERVER_TOKEN": "pm-bench"},
    "ses": {"AWS_ACCESS_KEY_ID": "AKIABENCHBENCH", "AWS_SECRET_ACCESS_KEY": "bench-secret"},
}
TARGETS = {"mailgun": 20_000, "sendgrid": 20_000, "postmark": 2_000, "ses": 5_000}
SECRETS = {
    "mailgun": {"api_key_env": "key-bench"},
    "sendgrid": {"api_key_env": "SG.bench"},
    "postmark": {"server_token_env": "pm-bench"},
    "ses": {"access_key_id_env": "AKIABENCHBENCH", "secret_access_key_env": "bench-secret"},
}


def issue() -> Content:
    """A ~30 KB HTML issue (inline styles, eight stories) and its text part."""
    style = (
        'style="font-family:Georgia,serif;font-size:17px;line-height:1.6;color:#222;'
        'margin:0 0 16px"'
    )
    story = (
        '<tr><td style="padding:24px 32px;border-bottom:1px solid #eee"><h2 style="font-family:'
        'Helvetica,Arial,sans-serif;font-size:22px;margin:0 0 8px;color:#111"><a href="https://'
        'theduran.example/2026/11/story-{n}/?utm_source=newsletter&amp;utm_medium=email" style='
        '"color:#111;text-decoration:none">Story {n}: what happened this week</a></h2>'
        + "".join(
            f"<p {style}>Paragraph {i} of the summary, with enough words to look like "
            "a real newsletter excerpt that readers skim before clicking through.</p>"
            for i in range(5)
        )
        + "</td></tr>"
    )
    html = (
        '<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0;'
        'background:#f4f4f4"><table role="presentation" width="100%" style="max-width:640px;'
        f'margin:0 auto;background:#fff"><tr><td {style}>Hello {token("name")},</td></tr>'
        + "".join(story.replace("{n}", str(n)) for n in range(8))
        + f'<tr><td {style}><a href="{token("view_online_url")}">View online</a> · '
        f'<a href="{token("unsubscribe_url")}">Unsubscribe</a> · '
        f'<a href="{token("preferences_url")}">Preferences</a><br>Sent to {token("email")}'
        "</td></tr></table></body></html>"
    )
    text = (
        f"Hello {token('name')},\n\n"
        + "\n\n".join(
            f"Story {n}: what happened this week\n" + "A summary line. " * 30 for n in range(8)
        )
        + f"\n\nUnsubscribe: {token('unsubscribe_url')}\n"
    )
    variant = RenderedVariant("all", html, text)
    return Content(
        issue=42,
        subject="The Duran weekly #42: what happened this week",
        from_="The Duran <newsletter@theduran.example>",
        reply_to="editor@theduran.example",
        variants=MappingProxyType({"all": variant}),
        headers=MappingProxyType(
            {
                "List-Id": "<weekly.theduran.example>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Precedence": "bulk",
            }
        ),
        tag="issue-42",
    )


def recipients(start: int, n: int) -> list[Recipient]:
    out = []
    for i in range(start, start + n):
        email = f"reader{i}@example.com"
        tok = f"{i:08d}.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
        url = f"https://theduran.example/unsubscribe?t={tok}"
        fields = {
            "name": f"Reader {i}",
            "email": email,
            "unsubscribe_url": url,
            "preferences_url": url,
            "view_online_url": "https://theduran.example/issues/42/",
        }
        headers = {
            "List-Unsubscribe": f"<{url}>, <mailto:unsubscribe@theduran.example?subject={tok}>"
        }
        out.append(Recipient(email, f"Reader {i}", "all", fields, headers))
    return out


def serve(name: str, queue: Any) -> None:
    """The fake server process: validation off, counting only."""
    from tests.fakes.mailgun import MailgunFake
    from tests.fakes.postmark import PostmarkFake
    from tests.fakes.sendgrid import SendGridFake
    from tests.fakes.ses import SESFake

    fake: Any = {
        "mailgun": lambda: MailgunFake(
            domain="mg.theduran.example", api_key="key-bench", validate=False, record="count"
        ),
        "sendgrid": lambda: SendGridFake(api_key="SG.bench", validate=False, record="count"),
        "postmark": lambda: PostmarkFake(server_token="pm-bench", validate=False, record="count"),
        "ses": lambda: SESFake(
            access_key_id="AKIABENCHBENCH",
            secret_access_key="bench-secret",
            region="eu-west-1",
            validate=False,
            record="count",
        ),
    }[name]()
    queue.put(fake.url)
    fake.serve_forever(poll_interval=0.1)


def one(name: str, total: int, workers: int, url: str) -> dict[str, Any]:
    """Send ``total`` recipients through adapter ``name``; runs in its own process."""
    from pressroom.delivery import providers

    cls = providers.get(name)
    settings_kw: dict[str, Any] = {"base_url": url}
    if name == "mailgun":
        settings_kw["domain"] = "mg.theduran.example"
    if name == "ses":
        settings_kw["region"] = "eu-west-1"
    settings = cls.Settings(**settings_kw)
    adapters = [cls(settings, secrets=SECRETS[name]) for _ in range(workers)]
    content = issue()
    for a in adapters:
        a.open(content)
    size = adapters[0].batch_limit
    starts = list(range(0, total, size))
    failed = 0

    def job(k: int) -> int:
        adapter = adapters[k % workers]
        batch = recipients(starts[k], min(size, total - starts[k]))
        return sum(r.outcome is not Outcome.SENT for r in adapter.send(batch))

    t0 = time.perf_counter()
    if workers == 1:
        failed = sum(job(k) for k in range(len(starts)))
    else:
        with ThreadPoolExecutor(workers) as pool:
            failed = sum(pool.map(job, range(len(starts))))
    elapsed = time.perf_counter() - t0
    return {
        "provider": name,
        "recipients": total,
        "failed": failed,
        "seconds": elapsed,
        "rate": total / elapsed,
        "batch": size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def publication(root: Path, name: str, total: int, url: str) -> Path:
    """A copy of the demo publication with ``total`` subscribers, sending to the fake."""
    import yaml

    root.mkdir()
    for folder in ("content", "templates"):
        shutil.copytree(ROOT / folder, root / folder)
    (root / "subscribers").mkdir()
    with (root / "subscribers" / "subscribers.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["email", "name", "lists", "tags", "status", "subscribed_at"])
        for i in range(total):
            tags = "patron" if i % 10 == 0 else ""  # two variants, as with a hidden CTA
            w.writerow([f"reader{i}@example.com", f"Reader {i}", "weekly", tags, "active", ""])
    (root / "subscribers" / "suppressed.csv").write_text("email,reason,date,list\n")
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    settings: dict[str, Any] = {"base_url": url}
    if name == "mailgun":
        settings["domain"] = "mg.theduran.example"
    if name == "ses":
        settings["region"] = "eu-west-1"
    data["providers"] = {name: settings}
    data["sending"].update({"provider": name, "rate": "0/s", "confirm_over": total + 1})
    (root / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


def end_to_end(name: str, total: int, url: str) -> dict[str, Any]:
    """``pressroom digest send`` in a subprocess: render, freeze, ledger, send loop, report."""
    with tempfile.TemporaryDirectory() as tmp:
        pub = publication(Path(tmp) / "pub", name, total, url)
        env = {**os.environ, **ENV[name], "PRESSROOM_SECRET": "bench-secret-0123456789"}
        exe = str(Path(sys.executable).parent / "pressroom")
        config = str(pub / "config.yaml")
        cmd = [
            exe,
            "--config",
            config,
            "-q",
            "digest",
            "send",
            "--yes",
            "--now",
            "2026-11-25T09:00",
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = proc.stderr.read().decode() if proc.stderr else ""
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{name}: pressroom digest send failed:\n{err}")
    return {"e2e_rate": total / elapsed, "e2e_rss_mb": usage.ru_maxrss / 1024}


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/__fake__/stats", timeout=10) as r:
        data: dict[str, Any] = json.load(r)
    return data


def bench(name: str, total: int, workers: int, repeat: int, e2e: bool) -> dict[str, Any]:
    """One provider: the adapter alone (best of ``repeat``), then the whole ``digest send``."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(name, queue), daemon=True)
    server.start()
    try:
        url = queue.get(timeout=60)
        child = [sys.executable, __file__, "--child", name, "--recipients", str(total)]
        child += ["--workers", str(workers), "--url", url]
        runs = []
        for _ in range(repeat):
            out = subprocess.run(child, capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        result: dict[str, Any] = max(runs, key=lambda r: r["rate"])
        s = stats(url)
        result.update(
            calls=s["requests"] // repeat,
            exact=s["accepted"] == repeat * total and s["distinct_recipients"] == total,
            payload_kb=s["mean_payload_bytes"] / 1024,
        )
        if e2e:
            result.update(end_to_end(name, total, url))
            after = stats(url)
            # the same addresses once more: each accepted exactly once per run, nobody lost
            result["exact"] = result["exact"] and (
                after["accepted"] == (repeat + 1) * total and after["distinct_recipients"] == total
            )
        return result
    finally:
        server.terminate()
        server.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(PROVIDERS))
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1, help="concurrent senders")
    parser.add_argument("--repeat", type=int, default=3, help="adapter runs; the best counts")
    parser.add_argument("--no-e2e", action="store_true", help="adapters only, no digest send")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.recipients, args.workers, args.url)))
        return
    rows = [
        bench(name, args.recipients, args.workers, args.repeat, not args.no_e2e)
        for name in args.names
    ]
    print(
        f"\n{args.recipients:,} recipients per provider; fake server in its own process, "
        f"validation off. adapter: best of {args.repeat}, {args.workers} sender(s), batches at "
        "the provider's maximum, "
        "30 KB issue; digest send: the whole CLI run (render, freeze into the ledger, "
        "send loop with sending.concurrency, report), rate unlimited\n"
    )
    print(
        f"{'provider':<10}{'adapter/s':>11}{'target':>8}{'':>4}{'calls':>7}{'batch':>6}"
        f"{'payload/call':>14}{'peak RSS':>10}{'digest send/s':>15}{'peak RSS':>10}{'exact':>7}"
    )
    for r in rows:
        ok = "ok" if r["rate"] >= TARGETS[r["provider"]] and r["failed"] == 0 else "LOW"
        e2e = ""
        if "e2e_rate" in r:
            e2e = f"{r['e2e_rate']:>15,.0f}{r['e2e_rss_mb']:>7,.0f} MB"
        exact = "yes" if r["exact"] else "NO"
        print(
            f"{r['provider']:<10}{r['rate']:>11,.0f}{TARGETS[r['provider']]:>8,}{ok:>4}"
            f"{r['calls']:>7,}{r['batch']:>6}{r['payload_kb']:>11,.0f} KB"
            f"{r['peak_rss_mb']:>7,.0f} MB{e2e}{exact:>7}"
        )


if __name__ == "__main__":
    main()
