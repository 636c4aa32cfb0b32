"""Name → class registries for pluggable backends (article sources, mail providers)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pkgutil
from typing import Any, Generic, TypeVar

from pressroom.errors import ConfigError

C = TypeVar("C", bound=type)


class Registry(Generic[C]):
    """Classes registered by their ``name``; an unknown name lists the known ones.

    A module of ``package`` registers its class with ``@registry.register``: adding a backend
    is adding a module. ``get`` imports the module named like the backend; listing the names
    (or an unknown name) imports them all.
    """

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._classes: dict[str, C] = {}
        self._loaded = False

    def register(self, cls: C) -> C:
        self._classes[cls.name] = cls  # type: ignore[attr-defined]
        return cls

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name != "base" and not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str, where: str = "") -> C:
        if name not in self._classes and name.isidentifier() and name != "base":
            # a backend's module is named after it: import just that one (a run that reads
            # Markdown files need not load the feed parser or the AWS SDK)
            try:
                importlib.import_module(f"{self.package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{self.package}.{name}":
                    raise
        if name not in self._classes:
            self._load()
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes))
            prefix = f"{where}: " if where else ""
            raise ConfigError(f'{prefix}unknown {self.kind} "{name}"; known: {known}') from None

    def known(self, name: str) -> bool:
        """Whether ``name`` is a backend; when its module is where ``get`` looks, answered
        without importing it (config validation: the command that uses it imports it).

        Every module of a plugin package but ``base`` and ``_``-prefixed helpers is named
        after the one backend it registers (``tests/test_config.py`` checks it)."""
        if name in self._classes:
            return True
        if name.isidentifier() and name != "base" and not name.startswith("_"):
            with contextlib.suppress(ImportError, ValueError):
                if importlib.util.find_spec(f"{self.package}.{name}") is not None:
                    return True
        try:
            self.get(name)
        except ConfigError:
            return False
        return True

    def names(self) -> list[str]:
        self._load()
        return sorted(self._classes)


# The two plugin registries. The core names each plugin package by string and imports it on
# first use, so config validation can look a backend up without importing a stage.
sources: Registry[type[Any]] = Registry("source type", "pressroom.content.sources")
providers: Registry[type[Any]] = Registry("provider", "pressroom.delivery.providers")
