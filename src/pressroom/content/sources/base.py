"""The article source interface.

A source yields the articles it holds, as ``Article`` values already normalised (aware dates,
absolute URLs, a summary), or an ``ArticleError`` for each article it could not read, so the
run can report it, skip it and go on. Remote sources use the injected ``requests.Session``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pressroom.errors import ArticleError
from pressroom.models import Article

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class SourceContext:
    """What every source is handed: the publication, where state lives, and the seams."""

    publication: Any  # config.PublicationConfig
    root: Path  # folder of config.yaml; relative paths in messages are relative to it
    state: Path  # folder for caches (e.g. a feed's ETag)
    http: Callable[[], requests.Session]  # opens the session on first use (see ``session``)
    now: datetime
    warn: Callable[[str], None]
    # parse caches the sources opened (content.cache.ParseCache), kept for save_rendered();
    # they are written only when this is true (a dry run or a preview leaves no state behind)
    caches: list[Any] = field(default_factory=list)
    write_cache: bool = False

    @cached_property
    def session(self) -> requests.Session:
        """The HTTP session for remote sources, made when one first asks (a run over local
        files never loads requests)."""
        return self.http()


class Source(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[Any]]

    def __init__(self, settings: Any, context: SourceContext) -> None:
        self.settings = settings
        self.context = context

    @abstractmethod
    def articles(self, since: datetime | None) -> Iterator[Article | ArticleError]:
        """Every article published at or after ``since`` (all when None)."""
