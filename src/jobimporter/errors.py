"""Every error jobimporter raises on purpose.

Third-party exceptions are translated at the boundary (``raise Mapped(msg) from exc``) so callers
only ever catch these. Messages start with the stage that raised them (``"fetch: ..."``).

- ``ImporterError``
  - ``ConfigError``: bad settings or sources file (e.g. unknown URL scheme)
  - ``FetchError``: a feed could not be downloaded; ``transient`` says whether a retry may help
    - ``FetchTimeout``: connect/read/total timeout (transient)
    - ``FetchNetworkError``: DNS, refused connection, TLS, protocol errors (transient)
    - ``FetchHTTPError``: a non-2xx answer; ``status`` and ``retry_after`` (429/5xx transient, others not)
    - ``FeedTooLarge``: the body passed the size cap (permanent)
  - ``FeedError``: the body arrived but is not a feed we can read (permanent)
    - ``NotAFeed``: an HTML page (firewall, login, captcha) or an unknown format
    - ``FeedParseError``: malformed or forbidden XML/JSON (DTDs, entities)
    - ``FeedPageError``: a further page of a paged API could not be fetched or read
  - ``ItemError``: one item is invalid; it fails alone, never its batch
  - ``StoreError``: the database failed; ``transient`` says whether a retry may help
    - ``NotFound`` (also ``LookupError``): a run, entry, feed, job or dead-letter id that does not exist
    - ``Conflict``: a write would break a uniqueness rule (a feed URL that is already stored) or
      cannot apply in the current state (a dead letter whose feed job is gone)
  - ``QueueError``: Redis or BullMQ could not be reached or used
  - ``WebhookError``: a webhook endpoint did not take a delivery (no answer, or not 2xx); retried
"""

from __future__ import annotations


class ImporterError(Exception):
    """Root of every error jobimporter raises on purpose."""

    transient: bool = False


class ConfigError(ImporterError):
    """Settings or the sources file are invalid."""


class FetchError(ImporterError):
    """A feed could not be downloaded."""

    kind: str = "fetch"


class FetchTimeout(FetchError):
    """The server did not answer within the connect/read/total timeout."""

    transient = True
    kind = "timeout"


class FetchNetworkError(FetchError):
    """DNS failure, refused or reset connection, TLS or protocol error."""

    transient = True
    kind = "connection"


class FetchHTTPError(FetchError):
    """The server answered with a status we cannot use."""

    kind = "http"

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        # 404/410 and other 4xx mean "stop asking"; 408, 425, 429 and 5xx may pass.
        self.transient = status in (408, 425, 429) or status >= 500


class FeedTooLarge(FetchError):
    """The body is larger than the configured cap."""

    kind = "too_large"


class FeedError(ImporterError):
    """The body arrived but cannot be read as a feed."""

    kind: str = "feed"


class NotAFeed(FeedError):
    """An HTML page or another document that is no feed (e.g. a firewall page served with 200)."""

    kind = "not_a_feed"


class FeedParseError(FeedError):
    """Malformed or forbidden XML/JSON."""

    kind = "parse"


class FeedPageError(FeedError):
    """A further page of a paged feed failed; the items of the pages before it were read."""

    kind = "page"


class ItemError(ImporterError):
    """One item is invalid; it fails alone with this reason."""


class StoreError(ImporterError):
    """The database failed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class NotFound(StoreError, LookupError):
    """A run, entry, feed, job or dead-letter id that does not exist; ``stage`` prefixes the message."""

    def __init__(self, kind: str, ident: str, *, stage: str = "store") -> None:
        super().__init__(f"{stage}: {kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class Conflict(StoreError):
    """A write would break a uniqueness rule (e.g. a feed URL already stored), or cannot apply now."""


class QueueError(ImporterError):
    """Redis or BullMQ could not be reached or used."""

    transient = True


class WebhookError(ImporterError):
    """A webhook endpoint did not take a delivery: no answer, or an answer other than 2xx."""

    transient = True
