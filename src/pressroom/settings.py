"""Settings from YAML: value types with their own syntax, YAML with line numbers, and typed,
checked dataclasses built from it, each error naming the file, line and dotted key.

``config`` declares what config.yaml holds (its sections, as dataclasses); sources and
providers declare their own ``Settings``. This module is how any of them is read: every
value checked once against its annotation (``build``), unknown keys refused with the closest
known one, and a secret pasted into config.yaml refused without echoing it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from pressroom.errors import ConfigError

T = TypeVar("T")

SECRET_KEYS = frozenset(
    {"api_key", "apikey", "password", "secret", "token", "server_token", "secret_access_key"}
)


# --- value types with their own syntax -------------------------------------------------


class Duration(timedelta):
    """A span written as ``7d``, ``12h``, ``30m`` or ``90s``."""

    _UNITS: typing.ClassVar[dict[str, str]] = {
        "d": "days",
        "h": "hours",
        "m": "minutes",
        "s": "seconds",
        "w": "weeks",
    }
    _LONGEST: typing.ClassVar[timedelta] = timedelta(days=36525)

    @classmethod
    def parse(cls, text: str) -> Duration:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([wdhms])\s*", str(text))
        if not m:
            raise ValueError(f'expected a duration like "7d", "12h" or "30m", got "{text}"')
        number, unit = float(m.group(1)), cls._UNITS[m.group(2)]
        # a span past what a date can be moved by ends in an OverflowError where it is used
        if number > cls._LONGEST.total_seconds() / timedelta(**{unit: 1}).total_seconds():
            raise ValueError(f'"{text.strip()}" is longer than 100 years')
        return cls(seconds=timedelta(**{unit: number}).total_seconds())


@dataclass(frozen=True, slots=True)
class Rate:
    """A send rate written as ``100/s``, ``6000/min`` or ``50000/h``; 0 means unlimited."""

    per_second: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*", text)
        if not m:
            raise ValueError(f'expected a rate like "100/s" or "6000/min", got "{text}"')
        per = {"s": 1, "m": 60, "h": 3600}[m.group(2)[0]]
        return cls(float(m.group(1)) / per)


PositiveInt = typing.NewType("PositiveInt", int)
NonNegativeInt = typing.NewType("NonNegativeInt", int)
PositiveFloat = typing.NewType("PositiveFloat", float)  # e.g. a timeout in seconds


# --- where a value was written ----------------------------------------------------------


@dataclass
class Ctx:
    """Where the values being built were written: the file, each dotted key's line, and the
    folder relative paths resolve against."""

    path: Path
    lines: dict[str, int]
    root: Path

    def fail(self, dotted: str, problem: str) -> ConfigError:
        line, parent = self.lines.get(dotted), dotted
        while line is None and "." in parent:  # a missing key: point at its section
            parent = parent.rsplit(".", 1)[0]
            line = self.lines.get(parent)
        where = f"{self.path.name}:{line}" if line else self.path.name
        return ConfigError(f"{where}: {dotted}: {problem}" if dotted else f"{where}: {problem}")


# --- YAML with line numbers ------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.2 booleans: only true/false; ``no``, ``yes``, ``on``, ``off`` are text."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# what YAML 1.1 read as booleans: still accepted where a setting is true/false
_OLD_BOOLS = {"yes": True, "no": False, "on": True, "off": False}


def parse_yaml(text: str, path: Path) -> tuple[Any, dict[str, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark else path.name
        raise ConfigError(f"{where}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path.name}: invalid YAML: {e}") from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    _collect_lines(node, "", lines, path)
    return data, lines


def _collect_lines(node: yaml.Node, prefix: str, lines: dict[str, int], path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            dotted = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            if dotted in lines:  # YAML keeps the last silently; a typo'd copy would win
                raise ConfigError(
                    f"{path.name}:{key_node.start_mark.line + 1}: {dotted}: duplicate key "
                    f"(first at line {lines[dotted]}); keep one"
                )
            lines[dotted] = key_node.start_mark.line + 1
            _collect_lines(value_node, dotted, lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            dotted = f"{prefix}.{i}" if prefix else str(i)
            lines[dotted] = item.start_mark.line + 1
            _collect_lines(item, dotted, lines, path)


# --- dataclass construction ------------------------------------------------------------


def _key(f: dataclasses.Field[Any]) -> str:
    return f.name[:-1] if f.name.endswith("_") else f.name


def reject_unknown(
    data: Mapping[str, Any], known: typing.Iterable[str], prefix: str, ctx: Ctx
) -> None:
    known = list(known)
    for key in data:
        if key in known:
            continue
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if str(key).lower() in SECRET_KEYS or str(key).lower().endswith(
            ("_key", "_password", "_token", "_secret")
        ):
            hint = f"{key}_env" if f"{key}_env" in known else "an *_env setting"
            raise ctx.fail(
                dotted,
                f"secrets do not belong in config.yaml; put it in an environment variable "
                f"and name that variable in {hint}",
            )
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else f"; known keys: {', '.join(known)}"
        raise ctx.fail(dotted, f"unknown key{hint}")


def build(cls: type[T], raw: Any, prefix: str, ctx: Ctx) -> T:
    if not isinstance(raw, dict):
        raise ctx.fail(prefix, f"expected a mapping, got {show(raw)}")
    fields = {_key(f): f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    reject_unknown(raw, fields, prefix, ctx)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, f in fields.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key in raw:
            kwargs[f.name] = convert(hints[f.name], raw[key], dotted, ctx)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ctx.fail(dotted, "missing; this setting is required")
        elif hints[f.name] is Path and isinstance(f.default, Path):
            kwargs[f.name] = (ctx.root / f.default).resolve()
    try:
        return cls(**kwargs)
    except ValueError as e:
        # a dataclass's own check says "field: problem"; point at that field's line
        key, sep, problem = str(e).partition(": ")
        if sep and key in fields:
            raise ctx.fail(f"{prefix}.{key}" if prefix else key, problem) from None
        raise ctx.fail(prefix, str(e)) from None


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_env_name(value: str, dotted: str, ctx: Ctx) -> None:
    """Refuse a secret pasted where a variable name belongs, without ever echoing it."""
    # a key, token or password: not a variable name at all (dashes, dots, base64), or a
    # long run of letters and digits with no underscore (AKIA…, hex), which names never are
    if not _ENV_NAME.fullmatch(value) or (
        len(value) >= 16 and "_" not in value and any(c.isdigit() for c in value)
    ):
        raise ctx.fail(
            dotted,
            "holds what looks like an API key, not a variable name; put the secret in an "
            "environment variable and write that variable's name here (letters, digits, _)",
        )


def show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"  # as YAML spells it
    return f"{type(value).__name__} {value!r}" if isinstance(value, (list, dict)) else str(value)


def convert(tp: Any, value: Any, dotted: str, ctx: Ctx) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return convert(inner[0], value, dotted, ctx)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(f'"{a}"' for a in args)
            raise ctx.fail(dotted, f"expected one of {choices}, got {show(value)}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str) and args and args[0] is str:
            value = [value]
        if not isinstance(value, list):
            raise ctx.fail(dotted, f"expected a list, got {show(value)}")
        return tuple(convert(args[0], v, f"{dotted}.{i}", ctx) for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ctx.fail(dotted, f"expected a mapping, got {show(value)}")
        return types.MappingProxyType(
            {str(k): convert(args[1], v, f"{dotted}.{k}", ctx) for k, v in value.items()}
        )
    if tp is PositiveInt or tp is NonNegativeInt:
        low = 1 if tp is PositiveInt else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = "a positive integer" if low else "a whole number ≥ 0"
            raise ctx.fail(dotted, f"expected {kind}, got {show(value)}")
        return value
    if tp is PositiveFloat:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ctx.fail(dotted, f"expected a number above 0, got {show(value)}")
        return float(value)
    if tp is bool:
        if isinstance(value, str) and value.lower() in _OLD_BOOLS:
            return _OLD_BOOLS[value.lower()]
        if not isinstance(value, bool):
            raise ctx.fail(dotted, f"expected true or false, got {show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.fail(dotted, f"expected a whole number, got {show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.fail(dotted, f"expected a number, got {show(value)}")
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ctx.fail(dotted, f"expected text, got {show(value)}")
        if isinstance(value, bool):
            raise ctx.fail(dotted, f"expected text, got {show(value)}; put the value in quotes")
        if dotted.endswith("_env"):
            _check_env_name(str(value), dotted, ctx)
        return str(value)
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ctx.fail(dotted, f"expected a path, got {show(value)}")
        resolved = (ctx.root / os.path.expanduser(value)).resolve()
        if is_root(resolved):
            raise ctx.fail(dotted, root_problem(value))
        return resolved
    if tp in (Duration, Rate):
        try:
            return tp.parse(str(value))
        except ValueError as e:
            raise ctx.fail(dotted, str(e)) from None
    if dataclasses.is_dataclass(tp):
        return build(tp, value, dotted, ctx)  # type: ignore[arg-type]
    if tp is Any:
        return value
    raise TypeError(f"settings.py cannot convert {tp!r} (at {dotted})")


def is_root(path: Path) -> bool:
    """Whether ``path`` (resolved) is the root of a file system: ``/``, ``C:\\``."""
    return path == Path(path.anchor)


def root_problem(value: str) -> str:
    return (
        f'"{value}" is the root of the file system: pressroom would read or write the whole '
        "disk there; give a folder of its own"
    )


# --- host names ---------------------------------------------------------------------


def ascii_host(host: str) -> str:
    """``host`` as a browser sends it: lower-case, an international name in Punycode by
    UTS #46 (IDNA 2008, non-transitional), so ``straße.de`` is ``xn--strae-oqa.de`` and never
    ``strasse.de``, another site that Python's own ``idna`` codec (IDNA 2003) would give.
    Raises ``UnicodeError`` for a name no browser takes."""
    if host.isascii():
        return host.lower()
    import idna  # loaded only for an international name

    return str(idna.encode(host, uts46=True, transitional=False).decode("ascii"))


def web_host(host: str) -> bool:
    """Whether a browser takes ``host`` (an IPv6 address in brackets) as a host name.

    Python's ``urlsplit`` takes ``1.2.3.256``, ``xn--a.example`` or ``a^b.example``; the URL
    rules browsers follow (WHATWG), which the sanitiser applies when it resolves a body's
    links against the article's URL, refuse them, and every render of that article failed.
    """
    host = host.lower()
    if _PLAIN_HOST.fullmatch(host) and "xn--" not in host:
        return True  # nearly every host: no need to ask (or load) the sanitiser
    return _web_host(host)


# letters, digits, "-" and "_" in dot-separated labels, the last one starting with a letter
# (one that looks like a number makes the whole host an IPv4 address, which must be valid)
_PLAIN_HOST = re.compile(r"(?:[a-z0-9_-]+\.)*[a-z][a-z0-9_-]*\.?")


@lru_cache(maxsize=1024)
def _web_host(host: str) -> bool:
    import nh3  # the sanitiser's own URL parser is the judge

    try:
        nh3.clean("", url_relative=("rewrite_with_base", f"http://{host}/"))
    except ValueError:
        return False
    return True
