"""Every failure pressroom reports on purpose.

Core modules raise these; only ``pressroom.cli`` turns them into a message and an exit code
(``exit_code``: 2 for usage and configuration, 1 for everything else).

    PressroomError
    ├── ConfigError            config.yaml is unreadable, invalid YAML, or a field is wrong   (2)
    ├── UsageError             an option combination or argument that cannot work             (2)
    ├── ArticleError           one article cannot be read; it is skipped, the run exits 1
    ├── SourceError            an article source (remote site, feed, folder) failed as a whole
    ├── FeedError              a feed cannot be written
    ├── TemplateError          a Jinja template is missing or broken (names file and line)
    ├── DigestError            an issue cannot be built or rendered
    │   └── NothingToSend      no new articles since the last sent issue                    (0)
    ├── PreflightError         the rendered issue failed its preflight checks
    ├── SubscriberError        a subscriber file or row is wrong
    ├── TokenError             a reader's signed token is malformed, forged or of another kind
    │   └── TokenExpired       a genuine token that is too old (a confirmation link after 7 days)
    ├── LedgerError            the SQLite state file is unusable or inconsistent
    │   └── StateLostError     the state file has no record of an issue the reports say went out
    ├── ReportError            a run's report cannot be written (the send itself is recorded)
    ├── LockError              another pressroom run holds the lock
    ├── ReputationError        the last issue's bounce or complaint rate is over the limit
    ├── PatreonError           the Patreon API could not be read (network, throttled, refused)
    │   └── PatreonAuthError   the creator token was refused (401/403); names the env var
    ├── ProviderError          a mail provider failed as a whole
    │   ├── ProviderAuthError  credentials rejected (401/403): the run stops; names the env var
    │   ├── ProviderConfigError  a provider's settings or env vars are missing or wrong     (2)
    │   └── OutboxError        a local file cannot be written (disk full, read-only): retry later
    └── WebhookError       a provider webhook delivery was refused (``status``: its HTTP answer)
        ├── WebhookRejected  no valid proof of origin (401/403): nothing was read
        └── WebhookMalformed the body is not in the provider's documented format (400)
"""

from __future__ import annotations


class PressroomError(Exception):
    """Root of every error pressroom raises on purpose."""

    exit_code = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(PressroomError):
    """config.yaml cannot be read or a field in it is invalid."""

    exit_code = 2


class UsageError(PressroomError):
    """Options or arguments that cannot work together."""

    exit_code = 2


class ArticleError(PressroomError):
    """One article cannot be read (bad front matter, no title, bad date, not UTF-8)."""

    def __init__(self, location: str, field: str, problem: str) -> None:
        super().__init__(f"{location}: {field}: {problem}" if field else f"{location}: {problem}")
        self.location = location
        self.field = field
        self.problem = problem


class SourceError(PressroomError):
    """An article source failed as a whole (names its URL or folder and the cause)."""


class FeedError(PressroomError):
    """A feed cannot be built or written."""


class TemplateError(PressroomError):
    """A template is missing or broken; the message names the template file and line."""


class DigestError(PressroomError):
    """An issue cannot be built or rendered."""


class NothingToSend(DigestError):
    """No new articles since the last sent issue: not a failure, so a cron job can rerun."""

    exit_code = 0


class PreflightError(PressroomError):
    """The rendered issue failed its preflight checks."""


class SubscriberError(PressroomError):
    """A subscriber file or row is invalid."""


class TokenError(PressroomError):
    """A reader's token (unsubscribe, confirm, preferences) is malformed, forged or misused."""


class TokenExpired(TokenError):
    """A genuine token that has passed its lifetime (a confirmation link)."""


class LedgerError(PressroomError):
    """The SQLite state file is unusable or inconsistent."""


class StateLostError(LedgerError):
    """The reports show an issue went out that the state file does not know: it was lost."""


class ReportError(PressroomError):
    """A run's JSON report cannot be written; what was sent is recorded in the state file."""


class LockError(PressroomError):
    """Another pressroom run holds the lock."""


class ReputationError(PressroomError):
    """The last issue bounced or drew complaints past the limit; the next one is held."""


class ProviderError(PressroomError):
    """A mail provider failed as a whole."""


class ProviderAuthError(ProviderError):
    """The provider rejected the credentials; the run stops and names the env var to fix."""


class ProviderConfigError(ProviderError):
    """A provider's settings or environment variables are missing or invalid."""

    exit_code = 2


class WebhookError(PressroomError):
    """A provider webhook delivery was refused; ``status`` is the HTTP answer."""

    status = 400


class WebhookRejected(WebhookError):
    """A webhook's proof of origin is missing, wrong, stale or replayed: nothing was read."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class WebhookMalformed(WebhookError):
    """A verified webhook body is not in the provider's documented format."""

    status = 400


class PatreonError(PressroomError):
    """The Patreon API could not be read: network, throttling, refusal; no tag was changed."""


class PatreonAuthError(PatreonError):
    """Patreon refused the creator access token (401/403)."""


class OutboxError(ProviderError):
    """A local write failed (disk full, read-only, I/O): temporary, the batch stays pending."""


def write_fix(e: OSError, folder: object) -> str:
    """How to fix a failed local write in ``folder``: what to free or make writable."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on the disk holding {folder}"
    if e.errno == errno.EFBIG:
        return f"free space for {folder} or raise the file size limit (ulimit -f)"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"make {folder} writable"
    if e.errno == errno.EIO:
        return f"check the disk holding {folder} (an I/O error)"
    if e.errno in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT, errno.EISDIR):
        return f"make sure {folder} is a folder"
    return f"check {folder}"
