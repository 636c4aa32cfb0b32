"""Benchmark: the whole delivery path, from subscriber CSV to the provider, through the ledger.

Scenarios, each in a fresh process so its peak RSS is its own (servers run in other processes):

- ``batch N``: N subscribers (generated CSV) → ``subscribers.iter_subscribers`` → ledger freeze
  → ``send.run`` (4 workers, no rate limit) → the Mailgun adapter (batches of 1,000) → the fake
  Mailgun server on 127.0.0.1 (validation off, counting). Timed end to end: reading the list,
  freezing it, every ledger write, every request. Targets: 100,000 at ≥ 20,000/s with peak
  RSS ≤ 200 MB; 1,000,000 with peak RSS ≤ 300 MB.
- ``smtp N``: the per-message path: the same loop with the smtp provider (one complete MIME
  message per recipient) to an aiosmtpd server on 127.0.0.1. Target ≥ 500 messages/s.
- ``naive K``: the baseline: per subscriber, render the issue again (Jinja + premailer), build
  the message with ``email.message.EmailMessage`` and make one request; K subscribers sampled,
  extrapolated to the batch size for the ratio.
- ``rate``: ``sending.rate`` holds: the same path with a rate set (batches smaller and larger
  than the rate), timed at the fake Mailgun as each request arrives; over every one-second
  window the recipients received must not exceed the rate by more than one batch (the margin
  covers requests sent on time that arrive a little late). Fails the benchmark otherwise.

Run: .venv/bin/python bench/send.py [--recipients 100000] [--million] [--smtp 3000] [--naive 100]
     .venv/bin/python bench/send.py --rate-only      # just the rate check (~10 s)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

NOW = "2026-11-25T09:00"
API_KEY = "key-bench"


# --- servers (their own processes) -------------------------------------------------------


def serve_mailgun(queue: Any) -> None:
    from tests.fakes.mailgun import MailgunFake

    fake = MailgunFake(
        domain="mg.theduran.example", api_key=API_KEY, validate=False, record="count"
    )
    queue.put(fake.url)
    fake.serve_forever(poll_interval=0.1)


def serve_smtp(queue: Any) -> None:
    import socket

    from aiosmtpd.controller import Controller

    class Count:
        n = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Count.n += len(envelope.rcpt_tos)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    queue.put(port)
    while True:
        time.sleep(3600)


def start_server(target: Any) -> tuple[Any, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue,), daemon=True)
    proc.start()
    return proc, queue.get(timeout=60)


# --- a publication with N subscribers ------------------------------------------------------


def publication(folder: Path, n: int, provider: str, extra: str, prefix: str = "r") -> Path:
    """A copy of the demo publication with ``n`` generated subscribers."""
    for name in ("content", "templates"):
        shutil.copytree(ROOT / name, folder / name)
    (folder / "subscribers").mkdir()
    with open(folder / "subscribers" / "subscribers.csv", "w", encoding="utf-8") as f:
        f.write("email,name,lists,tags,status,subscribed_at\n")
        chunk = []
        for i in range(n):
            tags = "patron" if i % 10 == 0 else ""
            chunk.append(
                f"{prefix}{i:07d}@example{i % 97}.org,Reader {i},weekly,{tags},active,2026-01-01\n"
            )
            if len(chunk) >= 50_000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("provider: file", f"provider: {provider}")
    text = text.replace("rate: 100/s", "rate: 0/s").replace("confirm_over: 1000", "confirm_over: 0")
    (folder / "config.yaml").write_text(text + extra, encoding="utf-8")
    return folder / "config.yaml"


# --- the measured child process ----------------------------------------------------------


def child(kind: str, config_path: Path) -> dict[str, Any]:
    """Freeze and send the demo issue to every subscriber; runs in its own process."""
    from datetime import datetime

    from pressroom import config as config_mod
    from pressroom.audience.tokens import Signer
    from pressroom.delivery import message
    from pressroom.delivery import send as send_mod
    from pressroom.delivery.ledger import Ledger, last_sent
    from pressroom.digest.prepare import prepare

    config = config_mod.load(config_path)
    now = datetime.fromisoformat(NOW).replace(tzinfo=config.publication.tz)
    t = time.perf_counter()
    prepared = prepare(config, now, last_sent=last_sent(config.state_db))
    render_s = time.perf_counter() - t
    env = {"BENCH_MAILGUN_KEY": API_KEY}

    c0 = time.process_time()
    t0 = time.perf_counter()
    ledger = Ledger(config.state_db)
    frozen = send_mod.freeze(
        ledger, config, prepared.rendered, window_end=prepared.issue.window_end, now=now
    )
    t1 = time.perf_counter()
    provider = send_mod.make_provider(config, None, env)
    factory = message.RecipientFactory(config, prepared.rendered, Signer(b"bench-secret"))
    provider.open(message.content_for(config, prepared.rendered, provider=provider, now=now))
    options = send_mod.SendOptions.from_config(config, provider)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    t2 = time.perf_counter()
    cpu = time.process_time() - c0
    provider.close()
    ledger.close()
    return {
        "kind": kind,
        "recipients": frozen.total,
        "sent": summary.sent,
        "failed": summary.failed,
        "batch": options.batch_size,
        "requests": summary.requests,
        "render_s": render_s,
        "freeze_s": t1 - t0,
        "send_s": t2 - t1,
        "seconds": t2 - t0,
        "rate": frozen.total / (t2 - t0),
        "cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def naive(config_path: Path, url: str, sample: int) -> dict[str, Any]:
    """Per subscriber: render + premailer, EmailMessage, one request. Returns the rate."""
    from datetime import datetime
    from email.message import EmailMessage
    from email.utils import make_msgid

    import requests

    from pressroom import config as config_mod
    from pressroom.audience.subscribers import iter_subscribers
    from pressroom.audience.tokens import Signer, unsubscribe_url
    from pressroom.delivery.ledger import last_sent
    from pressroom.digest.prepare import prepare
    from pressroom.digest.render import render

    config = config_mod.load(config_path)
    now = datetime.fromisoformat(NOW).replace(tzinfo=config.publication.tz)
    prepared = prepare(config, now, last_sent=last_sent(config.state_db))
    signer = Signer(b"bench-secret")
    session = requests.Session()
    session.auth = ("api", API_KEY)
    subs = []
    for s in iter_subscribers(config):
        subs.append(s)
        if len(subs) >= sample:
            break
    c0 = time.process_time()
    t0 = time.perf_counter()
    for s in subs:
        rendered = render(prepared.issue, config)  # templates + premailer, per subscriber
        variant = rendered.variant_for(s.tags)
        unsub = unsubscribe_url(config, signer.token(s.email, config.sending.list))
        fields = {
            "%%PR_NAME%%": s.name,
            "%%PR_EMAIL%%": s.email,
            "%%PR_UNSUBSCRIBE_URL%%": unsub,
            "%%PR_PREFERENCES_URL%%": unsub,
            "%%PR_VIEW_ONLINE_URL%%": config.publication.url,
        }
        html, text = variant.html, variant.text
        for k, v in fields.items():
            html, text = html.replace(k, v), text.replace(k, v)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = config.sending.from_, s.email, rendered.subject
        msg["Message-ID"] = make_msgid(domain="theduran.example")
        msg["List-Unsubscribe"] = f"<{unsub}>"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        msg.as_bytes()
        form = {
            "from": config.sending.from_,
            "to": s.email,
            "subject": rendered.subject,
            "html": html,
            "text": text,
            "h:List-Unsubscribe": f"<{unsub}>",
        }
        session.post(
            f"{url}/v3/mg.theduran.example/messages",
            files={k: (None, v) for k, v in form.items()},
            timeout=30,
        ).raise_for_status()
    elapsed = time.perf_counter() - t0
    return {
        "kind": "naive",
        "recipients": len(subs),
        "seconds": elapsed,
        "cpu_s": time.process_time() - c0,
        "rate": len(subs) / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# --- driver ------------------------------------------------------------------------------------


# --- the rate check (in this process: the server keeps the timeline) ----------------------


RATE_CASES = [  # (readers, sending.rate per second, Mailgun batch_size)
    (3_000, 1_000, 100),  # batches smaller than the rate: ten requests a second at most
    (3_000, 400, 1_000),  # a batch larger than the rate: one request every 2.5 s
]


def rate_check(tmp: Path) -> list[dict[str, Any]]:
    """Send with ``sending.rate`` set; the most recipients in any 1 s window, per case."""
    from tests.fakes.mailgun import MailgunFake
    from tests.fakes.server import Request, parse_multipart, split_addresses

    class Timed(MailgunFake):
        """Notes when each request arrives and how many recipients it carries."""

        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.timeline: list[tuple[float, int]] = []

        def dispatch(self, request: Request) -> Any:
            when = time.monotonic()
            fields = dict(parse_multipart(request.body, request.content_type))
            with self.lock:
                self.timeline.append((when, len(split_addresses(fields.get("to", "")))))
            return super().dispatch(request)

    out = []
    for readers, rate, batch in RATE_CASES:
        with Timed(domain="mg.theduran.example", api_key=API_KEY, validate=False) as fake:
            folder = tmp / f"rate-{rate}-{batch}"
            folder.mkdir()
            extra = mailgun_extra(fake.url).replace("batch_size: 1000", f"batch_size: {batch}")
            cfg = publication(folder, readers, "mailgun", extra, prefix=f"rate{rate}-")
            text = cfg.read_text(encoding="utf-8").replace("rate: 0/s", f"rate: {rate}/s")
            cfg.write_text(text, encoding="utf-8")
            row = child(f"rate {rate}/s, batch {batch}", cfg)
            times = sorted(fake.timeline)
        worst = max(sum(n for u, n in times if t <= u < t + 1.0) for t, _ in times)
        row.update(
            limit=rate,
            max_1s=worst,
            ok=worst <= rate + batch and fake.total_accepted == readers,
            duplicates=len(fake.duplicates()),
        )
        out.append(row)
    return out


def run_child(kind: str, config_path: Path, *more: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--config", str(config_path), *more],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def mailgun_extra(url: str) -> str:
    return (
        "\nproviders:\n  mailgun:\n    domain: mg.theduran.example\n"
        f"    base_url: {url}\n    api_key_env: BENCH_MAILGUN_KEY\n    batch_size: 1000\n"
    )


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/__fake__/stats", timeout=10) as r:
        data: dict[str, Any] = json.load(r)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="also send to 1,000,000")
    parser.add_argument("--smtp", type=int, default=3_000, help="messages for the SMTP run")
    parser.add_argument("--naive", type=int, default=100, help="baseline sample size")
    parser.add_argument("--rate-only", action="store_true", help="run only the rate check")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for flag in ("recipients", "smtp", "naive"):
        if getattr(args, flag) < 1:  # every scenario runs: the ratios need all of them
            parser.error(f"--{flag} must be at least 1")
    if args.child == "naive":
        print(json.dumps(naive(args.config, args.url, args.naive)))
        return
    if args.child:
        print(json.dumps(child(args.child, args.config)))
        return
    if args.rate_only:
        with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as tmp:
            report_rates(rate_check(Path(tmp)))
        return

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as tmp:
        mg_proc, url = start_server(serve_mailgun)
        try:
            sizes = [args.recipients] + ([1_000_000] if args.million else [])
            for n in sizes:
                folder = Path(tmp) / f"batch-{n}"
                folder.mkdir()
                before = stats(url)["accepted"]
                cfg = publication(folder, n, "mailgun", mailgun_extra(url), prefix=f"b{n}-")
                row = run_child(f"batch {n:,}", cfg)
                after = stats(url)
                row["accepted"] = after["accepted"] - before
                row["duplicates"] = after["duplicates"]
                rows.append(row)
            folder = Path(tmp) / "naive"
            folder.mkdir()
            cfg = publication(folder, args.naive, "mailgun", mailgun_extra(url))
            base = run_child("naive", cfg, "--url", url)
            base["kind"] = f"naive (sample {args.naive})"
            rows.append(base)
        finally:
            mg_proc.terminate()
            mg_proc.join(5)
        rates = rate_check(Path(tmp))
        smtp_proc, port = start_server(serve_smtp)
        try:
            folder = Path(tmp) / "smtp"
            folder.mkdir()
            extra = (
                f"\nproviders:\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n"
                "    security: none\n"
            )
            rows.append(
                run_child(f"smtp {args.smtp:,}", publication(folder, args.smtp, "smtp", extra))
            )
        finally:
            smtp_proc.terminate()
            smtp_proc.join(5)

    print("\nend to end: CSV → ledger → provider; servers on 127.0.0.1 in their own processes\n")
    print(
        f"{'scenario':<22}{'recipients':>11}{'seconds':>9}{'per second':>12}{'freeze s':>10}"
        f"{'send s':>8}{'CPU s':>8}{'peak RSS':>10}{'accepted':>11}{'dups':>6}"
    )
    for r in rows:
        print(
            f"{r['kind']:<22}{r['recipients']:>11,}{r['seconds']:>9.2f}{r['rate']:>12,.0f}"
            f"{r.get('freeze_s', 0):>10.2f}{r.get('send_s', 0):>8.2f}{r.get('cpu_s', 0):>8.2f}"
            f"{r['peak_rss_mb']:>8.0f}MB"
            f"{r.get('accepted', r.get('sent', 0)):>11,}{r.get('duplicates', 0):>6}"
        )
    batch = rows[0]
    base = next(r for r in rows if r["kind"].startswith("naive"))
    print(
        f"\nnaive baseline extrapolated to {batch['recipients']:,}: "
        f"{batch['recipients'] / base['rate']:,.0f} s; batch path {batch['seconds']:.1f} s "
        f"→ {batch['rate'] / base['rate']:,.0f}x faster"
    )
    print("targets: batch 100,000 ≥ 20,000/s and ≤ 200 MB; 1,000,000 ≤ 300 MB; smtp ≥ 500/s")
    report_rates(rates)


def report_rates(rows: list[dict[str, Any]]) -> None:
    """Print the rate check; exit 1 when a 1 s window went over the rate by more than a batch."""
    print("\nsending.rate over every 1 s window, at the fake Mailgun (limit: rate + one batch)\n")
    print(f"{'scenario':<26}{'recipients':>11}{'seconds':>9}{'requests':>10}{'max in 1 s':>12}")
    for r in rows:
        verdict = "ok" if r["ok"] else "OVER"
        print(
            f"{r['kind']:<26}{r['recipients']:>11,}{r['send_s']:>9.2f}{r['requests']:>10}"
            f"{r['max_1s']:>12,}  {verdict}"
        )
    if not all(r["ok"] for r in rows):
        raise SystemExit("sending.rate was exceeded by more than one batch in a 1 s window")


if __name__ == "__main__":
    main()
