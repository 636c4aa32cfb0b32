"""JSON from outside (webhook bodies, provider and Patreon API answers), text only.

``json.loads`` accepts a lone surrogate escape (``"\\ud800"``): valid JSON, but no text. It
parses, then fails wherever the string is encoded (an event key, the state database, a
CSV file): a traceback or a 500 far from where the input came in. ``json_body`` refuses it
where it is read, with the ``ValueError`` every caller already turns into "not JSON".
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_body(body: bytes | str) -> Any:
    """``body`` parsed as JSON, or ValueError: also for text no UTF-8 can carry (a lone
    ``\\ud800`` escape parses, then fails wherever the text is used: a 500, not a 400)."""
    data = json.loads(body)
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if _SURROGATE_ESCAPE.search(raw) and not _encodable(data):
        raise ValueError("a lone surrogate escape (\\ud800-\\udfff) is no text")
    return data


def _encodable(value: Any) -> bool:
    """Whether every string in a parsed JSON value encodes as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
