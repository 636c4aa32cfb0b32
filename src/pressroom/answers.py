"""HTTP answers from outside, read whole only within limits: at most ``MAX_RESPONSE_BYTES``
(uncompressed: a gzip bomb stops at the limit) and within ``timeout`` seconds of the headers
(a read timeout alone applies to each read, so a server dripping a byte at a time held a run
for ever). Every answer pressroom reads goes through ``read_bounded``: sources read it
themselves (``stream=True``); provider, Patreon and SNS sessions do it through
``bound_answers``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

# the most any answer may be: a feed, an API page, a provider's reply (uncompressed)
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def read_bounded(
    response: requests.Response, timeout: float | None, limit: int = MAX_RESPONSE_BYTES
) -> bytes | None:
    """The body of a ``stream=True`` response, read as it arrives: None once it passes
    ``limit`` bytes (uncompressed); ``requests.exceptions.ReadTimeout`` when it is not all
    there ``timeout`` seconds after the headers, however slowly it trickles (a read timeout
    alone applies to each read); a broken answer raises what requests itself raises.
    Every HTTP answer from outside is read through this (sources, providers)."""
    import requests
    import urllib3

    deadline = None if timeout is None else monotonic() + timeout
    body = bytearray()
    try:
        # read1: whatever has arrived (decompressed a bounded step at a time), so the
        # deadline and the size limit are checked as the bytes come, not after
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            body += chunk
            if len(body) > limit:
                return None
            if deadline is not None and monotonic() > deadline:
                raise requests.exceptions.ReadTimeout(f"no full answer in {timeout:g} s")
    # as requests' own iter_content names them
    except urllib3.exceptions.ReadTimeoutError as e:
        raise requests.exceptions.ReadTimeout(str(e)) from e
    except urllib3.exceptions.DecodeError as e:
        raise requests.exceptions.ContentDecodingError(e) from e
    except urllib3.exceptions.ProtocolError as e:
        raise requests.exceptions.ChunkedEncodingError(e) from e
    except urllib3.exceptions.HTTPError as e:
        raise requests.exceptions.ConnectionError(e) from e
    return bytes(body)


def bound_answers(session: requests.Session, limit: int = MAX_RESPONSE_BYTES) -> None:
    """Make ``session`` read every answer it is not asked to stream through ``read_bounded``,
    the deadline being the request's (read) timeout: a response hook runs before requests
    reads the body. An answer over ``limit`` raises ``ContentDecodingError``."""
    if any(getattr(h, "bounds_answers", False) for h in session.hooks["response"]):
        return
    session.hooks["response"].append(_hook(limit))


def _hook(limit: int) -> Callable[..., Any]:
    def read_whole(response: requests.Response, *_args: Any, **kwargs: Any) -> None:
        import requests

        if kwargs.get("stream"):
            return  # the caller reads it (with read_bounded)
        timeout = kwargs.get("timeout")
        if isinstance(timeout, tuple):
            timeout = timeout[1]  # (connect, read)
        try:
            body = read_bounded(
                response, timeout if isinstance(timeout, int | float) else None, limit
            )
        except BaseException:
            response.close()
            raise
        if body is None:
            response.close()
            raise requests.exceptions.ContentDecodingError(
                f"an answer over {limit >> 20} MB; is this the right address?"
            )
        response._content = body
        # as requests marks a body it has read (close then only releases the connection)
        response._content_consumed = True  # type: ignore[attr-defined]
        response.close()

    read_whole.bounds_answers = True  # type: ignore[attr-defined]
    return read_whole


# --- JSON from outside: text only -------------------------------------------------------
# ``json.loads`` accepts a lone surrogate escape (``"\\ud800"``): valid JSON, but no text. It
# parses, then fails wherever the string is encoded (an event key, the state database, a CSV
# file): a traceback or a 500 far from where the input came in. ``json_body`` refuses it
# where it is read (webhook bodies, provider and Patreon API answers), with the ValueError
# every caller already turns into "not JSON".

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
