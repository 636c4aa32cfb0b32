"""A small issue and its recipients, as the send loop hands them to an adapter."""

from __future__ import annotations

from types import MappingProxyType

from pressroom.delivery.providers.base import Content, Recipient
from pressroom.models import RenderedVariant, token

UNSUBSCRIBE = "https://news.example.org/unsubscribe?t="


def variant(key: str = "all", extra: str = "") -> RenderedVariant:
    """A rendered variant using every per-subscriber field the way the templates do."""
    html = (
        "<!doctype html><html><body><p>Hello "
        + token("name")
        + f",</p><p>This week's stories.{extra}</p><p><a href=\""
        + token("view_online_url")
        + '">View online</a> · <a href="'
        + token("unsubscribe_url")
        + '">Unsubscribe</a> · <a href="'
        + token("preferences_url")
        + '">Preferences</a></p><p>Sent to '
        + token("email")
        + "</p></body></html>"
    )
    text = (
        f"Hello {token('name')},\n\nThis week's stories.{extra}\n\n"
        f"Unsubscribe: {token('unsubscribe_url')}\nSent to {token('email')}\n"
    )
    return RenderedVariant(key, html, text)


def content(variants: tuple[RenderedVariant, ...] | None = None, issue: int = 7) -> Content:
    vs = variants or (variant(),)
    return Content(
        issue=issue,
        subject=f"The Example weekly #{issue}: a headline with ünïcode",
        from_="The Example <newsletter@news.example.org>",
        reply_to="editor@news.example.org",
        variants=MappingProxyType({v.key: v for v in vs}),
        headers=MappingProxyType({"List-Id": "<weekly.news.example.org>"}),
        tag=f"issue-{issue}",
        message_id_domain="news.example.org",
    )


def recipient(i: int, variant_key: str = "all", name: str | None = None) -> Recipient:
    """Recipient number ``i``: its own unsubscribe token in its fields and headers."""
    email = f"reader{i}@example.com"
    url = f"{UNSUBSCRIBE}tok{i:06d}"
    display = f"Reader {i}" if name is None else name
    fields = {
        "name": display,
        "email": email,
        "unsubscribe_url": url,
        "preferences_url": f"https://news.example.org/preferences?t=tok{i:06d}",
        "view_online_url": "https://news.example.org/issues/7/",
    }
    headers = {
        "List-Unsubscribe": f"<{url}>, <mailto:unsubscribe@news.example.org?subject=tok{i:06d}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return Recipient(
        email, display, variant_key, MappingProxyType(fields), MappingProxyType(headers)
    )


def recipients(n: int, start: int = 0, variant_key: str = "all") -> list[Recipient]:
    return [recipient(i, variant_key) for i in range(start, start + n)]
