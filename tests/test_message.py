"""The raw bytes of a built message: headers, encodings, line lengths, personal fields."""

from __future__ import annotations

import dataclasses
import email
import email.message
import email.policy
import re
from pathlib import Path

import pytest

from pressroom.audience.tokens import Signer
from pressroom.delivery import message
from pressroom.delivery.providers.base import Provider
from pressroom.models import Subscriber, unfilled
from tests.send_helpers import NOW, make_config, rendered_issue

SIGNER = Signer(b"test-secret")


def built(tmp_path: Path, sub: Subscriber, *, sending: str = "", provider=None) -> bytes:
    config = make_config(tmp_path, sending)
    rendered = rendered_issue()
    content = message.content_for(config, rendered, provider=provider, now=NOW)
    recipient = message.recipient_for(
        config,
        rendered,
        SIGNER,
        sub,
        manages_unsubscribe=bool(provider and provider.manages_unsubscribe),
    )
    return message.build(content, recipient)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def raw_header(data: bytes, name: str) -> str:
    """A header exactly as written (unfolded), without any decoding."""
    text = header_block(data).decode("utf-8")
    m = re.search(rf"^{name}: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", text, re.M)
    assert m, f"no {name} header"
    return re.sub(r"\r\n[ \t]", " ", m.group(1))


def test_a_message_parses_back_with_every_header(tmp_path: Path) -> None:
    data = built(tmp_path, Subscriber("ada@example.com", name="Ada Lovelace"))
    msg = parse(data)
    assert msg["From"] == "The Duran <newsletter@theduran.example>"
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["Reply-To"] == "editor@theduran.example"
    assert msg["Subject"] == "The Duran weekly #7: Ünïcode news"
    assert msg["Date"] == "Wed, 25 Nov 2026 09:00:00 +0000"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["List-Id"] == "The Duran weekly <weekly.theduran.example>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.defects == []
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # the preferred part last (RFC 2046 5.1.4)


def test_message_id_uses_the_from_domain_and_is_one_per_recipient(tmp_path: Path) -> None:
    a = built(tmp_path, Subscriber("ada@example.com"))
    again = built(tmp_path, Subscriber("ada@example.com"))
    b = built(tmp_path, Subscriber("bob@example.com"))
    ida, idb = parse(a)["Message-ID"], parse(b)["Message-ID"]
    assert re.fullmatch(r"<[^@<>\s]+@theduran\.example>", ida)
    assert "localhost" not in ida
    assert ida != idb  # unique per recipient …
    assert parse(again)["Message-ID"] == ida  # … and the same on a resend (receivers dedupe)


def test_list_unsubscribe_is_raw_and_carries_this_recipients_verifiable_token(
    tmp_path: Path,
) -> None:
    data = built(tmp_path, Subscriber("ada@example.com", name="Ada"))
    value = raw_header(data, "List-Unsubscribe")
    assert "=?" not in value  # never an RFC 2047 encoded-word
    m = re.fullmatch(
        r"<(https://theduran\.example/unsubscribe\?t=([A-Za-z0-9_.-]+))>, "
        r"<mailto:unsubscribe@theduran\.example\?subject=unsubscribe>",
        value,
    )
    assert m, value
    assert SIGNER.verify(m.group(2)) == ("ada@example.com", "weekly")
    # the same URL is the unsubscribe link in both bodies
    msg = parse(data)
    assert m.group(1) in msg.get_body(("plain",)).get_content()
    assert f'href="{m.group(1)}"' in msg.get_body(("html",)).get_content()


def test_a_long_unsubscribe_url_is_never_folded_into_an_encoded_word(tmp_path: Path) -> None:
    base = "https://theduran.example/" + "u" * 150 + "/unsubscribe"
    config = make_config(tmp_path, f"unsubscribe_url: {base}\n")
    rendered = rendered_issue()
    content = message.content_for(config, rendered, now=NOW)
    data = message.build(
        content, message.recipient_for(config, rendered, SIGNER, Subscriber("ada@example.com"))
    )
    value = raw_header(data, "List-Unsubscribe")
    assert value.startswith(f"<{base}?t=")
    assert "=?" not in value and "utf-8" not in value.lower()
    # the trap this avoids: the email package folds the same header into an encoded-word
    trap = email.message.EmailMessage(policy=email.policy.SMTP)
    trap["List-Unsubscribe"] = value
    assert "=?utf-8?q?" in trap.as_string()


def test_every_body_line_is_at_most_76_and_every_line_ends_in_crlf(tmp_path: Path) -> None:
    data = built(tmp_path, Subscriber("ada@example.com", name="Ada"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert b"Content-Transfer-Encoding: quoted-printable" in body
    assert max(len(line) for line in header_block(data).split(b"\r\n")) <= 998


def test_fields_are_filled_escaped_in_html_and_raw_in_text(tmp_path: Path) -> None:
    data = built(tmp_path, Subscriber("o.brien@example.com", name="Tom & Jerry <O'Brien>"))
    msg = parse(data)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Hello Tom & Jerry <O'Brien>" in text
    assert "Hello Tom &amp; Jerry &lt;O&#x27;Brien&gt;" in html
    assert "View online: https://theduran.example/issues/7/" in text
    assert unfilled(text) == [] and unfilled(html) == []
    assert "Ünïcode “quotes”" in html


def test_non_ascii_display_names_and_subject_are_encoded(tmp_path: Path) -> None:
    data = built(tmp_path, Subscriber("zoe@example.org", name="Zoë Ünïcode, Jr."))
    head = header_block(data)
    assert head.isascii()
    assert "=?utf-8?" in raw_header(data, "To")
    assert "=?utf-8?" in raw_header(data, "Subject")
    msg = parse(data)
    assert msg["To"].addresses[0].display_name == "Zoë Ünïcode, Jr."
    assert msg["To"].addresses[0].addr_spec == "zoe@example.org"
    assert msg["Subject"] == "The Duran weekly #7: Ünïcode news"


def test_a_name_cannot_inject_headers(tmp_path: Path) -> None:
    data = built(tmp_path, Subscriber("eve@example.com", name="Eve\r\nBcc: victim@example.com"))
    msg = parse(data)
    assert msg["Bcc"] is None
    assert "Bcc" not in [line.split(b":")[0].decode() for line in header_block(data).split(b"\r\n")]


def test_subscribers_tagged_patron_get_the_variant_without_the_cta(tmp_path: Path) -> None:
    patron = parse(built(tmp_path, Subscriber("p@example.com", tags=frozenset({"patron"}))))
    reader = parse(built(tmp_path, Subscriber("r@example.com")))
    assert "patreon.com" not in patron.get_body(("html",)).get_content()
    assert "patreon.com" in reader.get_body(("html",)).get_content()


def test_http_unsubscribe_urls_get_no_one_click_header(tmp_path: Path) -> None:
    data = built(
        tmp_path,
        Subscriber("ada@example.com"),
        sending="unsubscribe_url: http://theduran.example/unsubscribe\n",
    )
    msg = parse(data)
    assert msg["List-Unsubscribe"].startswith("<http://theduran.example/unsubscribe?t=")
    assert msg["List-Unsubscribe-Post"] is None


def test_a_provider_that_manages_unsubscribes_gets_neither_header(tmp_path: Path) -> None:
    class Managed(Provider):
        name = "managed"
        Settings = dict
        manages_unsubscribe = True

        def send(self, batch):  # type: ignore[no-untyped-def]
            return []

    msg = parse(built(tmp_path, Subscriber("ada@example.com"), provider=Managed({})))
    assert msg["List-Unsubscribe"] is None
    assert msg["List-Unsubscribe-Post"] is None
    assert msg["List-Id"]  # still identifies the list


def test_constant_parts_are_compiled_once_per_variant(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    rendered = rendered_issue()
    content = message.content_for(config, rendered, now=NOW)
    first = message._compiled(content, "all")
    message.build(content, message.recipient_for(config, rendered, SIGNER, Subscriber("a@x.org")))
    assert message._compiled(content, "all") is first
    assert message._compiled(content, "without:patreon") is not first


@pytest.mark.parametrize("from_", ["news@Theduran.Example", "The Duran <n@mail.theduran.example>"])
def test_domain_of(from_: str) -> None:
    assert message.domain_of(from_) in ("theduran.example", "mail.theduran.example")


@pytest.mark.parametrize(
    "subject",
    [
        "The Duran weekly #1: The week in review: budgets, ballots and back-channels",
        "The Duran weekly #12: " + "a long subject that needs folding more than once " * 3,
    ],
)
def test_a_long_ascii_subject_folds_at_a_space_inside_the_value(
    tmp_path: Path, subject: str
) -> None:
    config = make_config(tmp_path)
    rendered = rendered_issue(subject=subject)
    content = message.content_for(config, rendered, provider=None, now=NOW)
    sub = Subscriber("ada@example.com", name="Ada")
    data = message.build(content, message.recipient_for(config, rendered, SIGNER, sub))
    head = header_block(data)
    start = head.index(b"\r\nSubject:") + 2
    end = re.compile(rb"\r\n(?![ \t])").search(head, start)
    raw = head[start : end.start() if end else len(head)]
    lines = raw.split(b"\r\n")
    # the first words stay on the Subject line (RFC 5322 2.2.3), each fold is at a space
    assert lines[0].startswith(b"Subject: The Duran weekly #1")
    assert len(lines) >= 2 and all(line.startswith(b" ") for line in lines[1:])
    assert all(len(line) <= 78 for line in lines)
    assert b"=?" not in raw  # plain ASCII: no encoded words
    assert b" ".join(line.strip() for line in lines) == b"Subject: " + subject.strip().encode()
    assert parse(data)["Subject"] == subject.strip()  # no leading space when parsed


ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def header_fields(data: bytes) -> list[tuple[str, list[bytes]]]:
    """(name, its physical lines) for every header of a message, folding kept."""
    fields: list[tuple[str, list[bytes]]] = []
    for line in header_block(data).split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            fields[-1][1].append(line)
        else:
            fields.append((line.split(b":", 1)[0].decode("ascii"), [line]))
    return fields


def rfc2047_decoded(value: str) -> str:
    """``value`` decoded by RFC 2047's rules (whitespace between encoded-words dropped)."""
    import email.header

    return str(email.header.make_header(email.header.decode_header(value)))


LONG_NAMES = [
    "Zoë Élodie-Françoise de la Montagne-Sainte-Geneviève Ünterstützungsgesellschaft",
    "東京都千代田区の新聞社東京都千代田区の新聞社東京都千代田区の新聞社東京都千代田区の新聞社",
    '😀 O\'Brien, "the Reader" <x> ' + "é" * 70,
]


@pytest.mark.parametrize("name", LONG_NAMES)
def test_long_non_ascii_headers_use_short_encoded_words_on_short_lines(
    tmp_path: Path, name: str
) -> None:
    from_name = re.sub("[\"'<>,]", "", name)[:60]
    config = make_config(tmp_path, f"from: '\"{from_name}\" <newsletter@theduran.example>'\n")
    subject = f"The Duran weekly #7: {name}"
    rendered = rendered_issue(subject=subject)
    content = message.content_for(config, rendered, now=NOW)
    recipient = message.recipient_for(config, rendered, SIGNER, Subscriber("zoe@example.org", name))
    data = message.build(content, recipient)
    fields = header_fields(data)
    assert header_block(data).isascii()
    for field, lines in fields:
        for word in ENCODED_WORD.findall(b"\r\n".join(lines)):
            assert len(word) <= 75, (field, word)  # RFC 2047 section 2
        if field != "List-Unsubscribe":  # written raw on purpose: its URL is never folded
            assert all(len(line) <= 78 for line in lines), (field, lines)
    assert any(ENCODED_WORD.search(b"".join(lines)) for f, lines in fields if f == "To")
    unfolded = {
        f: re.sub(r"\r\n[ \t]", " ", b"\r\n".join(ls).decode()).split(": ", 1)[1]
        for f, ls in fields
    }
    to_name, to_addr = email.utils.parseaddr(unfolded["To"])
    assert to_addr == "zoe@example.org"
    assert rfc2047_decoded(to_name) == name
    sent_name, from_addr = email.utils.parseaddr(unfolded["From"])
    assert rfc2047_decoded(sent_name) == from_name
    assert from_addr == "newsletter@theduran.example"
    assert rfc2047_decoded(unfolded["Subject"]) == subject
    assert parse(data)["Subject"] == subject
    assert parse(data)["To"].addresses[0].addr_spec == "zoe@example.org"


def test_a_long_name_with_ascii_words_between_parses_back_exactly(tmp_path: Path) -> None:
    # Python's own address parser keeps the space between two adjacent encoded-words, which
    # RFC 2047 6.2 drops; plain words between encoded ones read the same to both
    name = "Zoë Élodie-Françoise de la Montagne-Sainte-Geneviève und Ünterstützungsverein"
    data = built(tmp_path, Subscriber("zoe@example.org", name=name))
    to = next(lines for f, lines in header_fields(data) if f == "To")
    assert len(to) >= 2 and all(len(line) <= 78 for line in to)
    assert all(len(w) <= 75 for w in ENCODED_WORD.findall(b"".join(to)))
    assert parse(data)["To"].addresses[0].display_name == name


def test_message_id_is_stable_per_recipient_and_differs_between_them() -> None:
    """Derived from issue and recipient, not the clock: a preview is reproducible, and a
    resend after an uncertain attempt carries the same id (receivers can drop the copy)."""
    from pressroom.delivery.message import message_id
    from pressroom.delivery.providers.base import Content

    content = Content(
        issue=3,
        subject="s",
        from_="N <n@news.example>",
        reply_to=None,
        variants={},
        message_id_domain="news.example",
    )
    first = message_id(content, "a@example.org")
    assert first == message_id(content, "A@example.org")
    assert first.startswith("<pressroom.3.") and first.endswith("@news.example>")
    assert first != message_id(content, "b@example.org")
    test_copy = dataclasses.replace(content, test=True)
    assert message_id(test_copy, "a@example.org") != first
