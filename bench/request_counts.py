"""Provider requests per N readers (default 2,000), through the real send loop and ledger.

Readers alternate between the two audience variants (patrons get the issue without its
support block), as on a real list. Each provider's fake runs on 127.0.0.1 (validation off,
counting); printed per provider: the requests it received, the readers accepted and any
reader accepted twice. A ledger batch is one request: Mailgun and SendGrid need 2 requests
for 2,000 readers, Postmark 4, SES bulk 40, SES per message one per reader.

Run: .venv/bin/python bench/request_counts.py [--readers 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

SES = "ses:\n    region: eu-west-1\n    access_key_id_env: K1\n    secret_access_key_env: K2\n"


def cases() -> dict[str, tuple[Callable[[], Any], str]]:
    from tests.fakes.mailgun import MailgunFake
    from tests.fakes.postmark import PostmarkFake
    from tests.fakes.sendgrid import SendGridFake
    from tests.fakes.ses import SESFake

    quiet: dict[str, Any] = {"validate": False, "record": "count"}
    aws: dict[str, Any] = {"access_key_id": "k1", "secret_access_key": "k2", "region": "eu-west-1"}
    return {
        "mailgun": (
            lambda: MailgunFake(api_key="k1", **quiet),
            "mailgun:\n    domain: mg.example.org\n    api_key_env: K1\n",
        ),
        "sendgrid": (
            lambda: SendGridFake(api_key="k1", **quiet),
            "sendgrid:\n    api_key_env: K1\n",
        ),
        "postmark": (
            lambda: PostmarkFake(server_token="k1", **quiet),
            "postmark:\n    server_token_env: K1\n",
        ),
        "ses (bulk)": (lambda: SESFake(**aws, **quiet), SES),
        "ses (per message)": (lambda: SESFake(**aws, **quiet), SES + "    use_bulk: false\n"),
    }


def count(readers: int, fake: Callable[[], Any], settings: str) -> dict[str, int]:
    """Send ``readers`` through the loop to ``fake``; what the fake saw."""
    from tests.send_helpers import NOW, make_config, rendered_issue

    from pressroom.audience.tokens import Signer
    from pressroom.delivery import message
    from pressroom.delivery import send as send_mod
    from pressroom.delivery.ledger import Ledger

    with tempfile.TemporaryDirectory() as tmp, fake() as server:
        name = settings.split(":")[0]
        config = make_config(
            Path(tmp),
            sending=f"provider: {name}\nrate: 0/s\nconcurrency: 4\n",
            extra=f"providers:\n  {settings}    base_url: {server.url}\n",
        )
        provider = send_mod.make_provider(config, env={"K1": "k1", "K2": "k2"})
        rendered = rendered_issue(1)
        rows = [
            (f"r{i:06d}@example.org", f"R {i}", "all" if i % 2 else "without:patreon")
            for i in range(readers)
        ]
        with Ledger(config.state_db) as ledger:
            frozen = ledger.freeze(rendered, rows, window_end=NOW, now=NOW)
            factory = message.RecipientFactory(config, rendered, Signer(b"bench"))
            provider.open(message.content_for(config, rendered, provider=provider, now=NOW))
            options = send_mod.SendOptions.from_config(config, provider)
            summary = send_mod.run(ledger, frozen, provider, factory, options)
        provider.close()
        stats = server.stats()
        return {
            "batch": options.batch_size,
            "requests": stats["requests"],
            "accepted": stats["accepted"],
            "duplicates": stats["duplicates"],
            "sent": summary.sent,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--readers", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'provider':<20}{'batch':>7}{'requests':>10}{'accepted':>10}{'twice':>7}")
    for label, (fake, settings) in cases().items():
        r = count(args.readers, fake, settings)
        print(
            f"{label:<20}{r['batch']:>7}{r['requests']:>10,}{r['accepted']:>10,}"
            f"{r['duplicates']:>7}"
        )


if __name__ == "__main__":
    main()
