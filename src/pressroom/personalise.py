"""Fill per-subscriber field tokens into a rendered part, cheaply (DESIGN decision 1).

A rendered part (HTML or text) is split once at its ``models.token`` placeholders; filling it
for one subscriber is then a join of constant pieces and escaped values, with no parsing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from pressroom.models import FIELDS, token

_TOKEN_RE = re.compile("|".join(re.escape(token(f)) for f in FIELDS))
_FIELD_OF = {token(f): f for f in FIELDS}


class Personaliser:
    """A part compiled for repeated filling: ``fill(values)`` for each subscriber."""

    __slots__ = ("_fields", "_html", "_pieces")

    def __init__(self, part: str, *, is_html: bool) -> None:
        pieces = _TOKEN_RE.split(part)
        self._pieces = pieces
        self._fields = [_FIELD_OF[m] for m in _TOKEN_RE.findall(part)]
        self._html = is_html

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self._fields)

    def fill(self, values: Mapping[str, str]) -> str:
        """The part for one subscriber; values are HTML-escaped in HTML parts, raw in text."""
        pieces = self._pieces
        out = [pieces[0]]
        if self._html:
            for i, name in enumerate(self._fields, 1):
                out.append(html.escape(values.get(name, ""), quote=True))
                out.append(pieces[i])
        else:
            for i, name in enumerate(self._fields, 1):
                out.append(values.get(name, ""))
                out.append(pieces[i])
        return "".join(out)

    def translate(self, syntax: Mapping[str, str]) -> str:
        """The part with each token replaced by a provider's own substitution syntax."""
        out = [self._pieces[0]]
        for i, name in enumerate(self._fields, 1):
            out.append(syntax[name])
            out.append(self._pieces[i])
        return "".join(out)


def unfilled(part: str) -> list[str]:
    """Tokens (or token-like leftovers) still present in a final part."""
    return sorted(set(re.findall(r"%%PR_[A-Z_]+%%|\{\{.*?\}\}|\{\{%20.*?%20\}\}", part)))
