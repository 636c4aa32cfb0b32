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
    """The run's one clock reading, the one rule for "has this date come", and the moments at
    which what the sources publish changes with the time alone: every article's date, and
    publish or expiry dates that keep one off the site until or after.

    Dates compare as instants: an article dated 01:30 on the night clocks go back comes
    before 01:10 in the repeated hour, as it happened, whatever the wall clock says. A run
    notes every such moment; ``last`` (the latest at or before ``now``) and ``next`` (the
    first after it), POSIX timestamps, bound the times at which the same files give the same
    articles, so a later run whose clock lies in ``[last, next)`` may reuse this run's output
    (``feeds.unchanged``).
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.at = now.timestamp()
        self.last: float | None = None
        self.next: float | None = None

    def passed(self, moment: datetime) -> bool:
        """Whether ``moment`` is at or before now."""
        return moment.timestamp() <= self.at

    def note(self, moment: datetime) -> None:
        at = moment.timestamp()
        if at <= self.at:
            if self.last is None or at > self.last:
                self.last = at
        elif self.next is None or at < self.next:
            self.next = at


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
    # folders pressroom writes to (the feeds' output): never read back as articles
    outputs: tuple[Path, ...] = ()
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
