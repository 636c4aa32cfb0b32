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


# A file changed less than this before it was read may change again within the same timestamp
# tick, keeping size, times and inode: neither the parse cache nor a source's fingerprint
# vouches for it (git's "racily clean" problem). A second covers coarse filesystem clocks.
RACY_NS = 1_000_000_000


class Clock:
    """The moments at which what the sources publish changes with the time alone: every
    article's date, and publish or expiry dates that keep one off the site until or after.

    A run notes them all; ``last`` (the latest at or before ``now``) and ``next`` (the first
    after it) bound the times at which the same files give the same articles, so a later run
    whose clock lies in ``[last, next)`` may reuse this run's output (``feeds.unchanged``).
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.last: datetime | None = None
        self.next: datetime | None = None

    def note(self, moment: datetime) -> None:
        if moment <= self.now:
            if self.last is None or moment > self.last:
                self.last = moment
        elif self.next is None or moment < self.next:
            self.next = moment


@dataclass(frozen=True)
class SourceContext:
    """What every source is handed: the publication, where state lives, and the seams."""

    publication: Any  # config.PublicationConfig
    root: Path  # folder of config.yaml; relative paths in messages are relative to it
    state: Path  # folder for caches (e.g. a feed's ETag)
    http: Callable[[], requests.Session]  # opens the session on first use (see ``session``)
    now: datetime
    warn: Callable[[str], None]
    # parse caches the sources opened (content.cache.ParseCache), saved by LoadResult.save_cache();
    # they are written only when this is true (a dry run or a preview leaves no state behind)
    caches: list[Any] = field(default_factory=list)
    write_cache: bool = False
    # what the sources read, for a later run to compare (``Source.fingerprint``), and when
    # their answer changes with the clock
    inputs: list[str | None] = field(default_factory=list)
    clock: Clock = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clock", Clock(self.now))

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
        """Every article published at or after ``since`` (all when None).

        A source that can fingerprint what it reads appends the fingerprint of what this
        very call read to ``context.inputs`` (None when it cannot vouch for it), and notes on
        ``context.clock`` any date of its own that decides what it yields."""

    def fingerprint(self) -> str | None:
        """A digest of everything ``articles`` would read (for local files: every path and
        its size, times and inode), without reading it; equal digests mean equal articles.
        None when the source cannot tell without fetching (remote sources)."""
        return None
