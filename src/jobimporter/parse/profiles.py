"""Board conventions: small named profiles applied to a feed's items after parsing.

Some boards put company, location or job type where no format says they belong; a profile moves
them to their fields. A feed's profile is chosen by its URL (``"auto"``: the profile whose hosts
serve the feed, or whose URL test accepts it) unless the sources file names one (``profile =
"weworkremotely"``) or ``"none"``. A profile only ever fills or tidies fields, and leaves an item
that does not follow its convention as it was.

- ``weworkremotely``: titles "Company: Role" (the stored title is the role), ``<region>`` → locations,
  ``<type>`` → job type, ``<expires_at>``; every job remote.
- ``wordpress-jobs``: WordPress post feeds of WP Job Manager sites (``/feed/?post_type=job_listing``,
  Jobspresso) put "Company<br>⚲&nbsp;Location" in ``dc:creator``.
- ``stackoverflow``: Stack Overflow Jobs' ``a10:author`` is the company; titles "Role at Company
  (Location)" (and "(allows remote)") give the role, the location and the workplace.
- ``pythonorg``: Python.org's job titles "Role, Company"; the first line of the description is the
  location.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from jobimporter.models import RawItem

_ENTITY_SPACE = re.compile(r"&nbsp;|&#160;|\u00a0")
_CREATOR_BREAK = re.compile(r"<br\s*/?>|⚲", re.IGNORECASE)
_ALLOWS_REMOTE = re.compile(r"\s*\((?:allows remote|remote)\)\s*$", re.IGNORECASE)
_LEGAL_SUFFIXES = frozenset({"inc", "inc.", "llc", "ltd", "ltd.", "gmbh", "s.a.", "co.", "corp.", "plc"})


@dataclass(frozen=True, slots=True)
class Profile:
    """One board's convention: where it applies and how it fixes an item."""

    name: str
    summary: str
    hosts: tuple[str, ...]
    fix: Callable[[RawItem], RawItem]
    accepts_url: Callable[[str], bool] = lambda url: False

    def serves(self, host: str, url: str) -> bool:
        return any(host == h or host.endswith("." + h) for h in self.hosts) or self.accepts_url(url)


def host_of(url: str) -> str:
    """``https://www.Example.com/x`` → ``example.com``."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def known(name: str) -> bool:
    return name in ("auto", "none") or name in PROFILES


def choose(name: str, url: str) -> Profile | None:
    """The profile a feed uses: ``name``'s, or by URL for ``"auto"``; ``None`` for none.

    :raises ValueError: an unknown name (sources and the API check names before this).
    """
    if name == "none":
        return None
    if name != "auto":
        if name not in PROFILES:
            raise ValueError(f"parse: unknown profile {name!r} (known: {', '.join(sorted(PROFILES))})")
        return PROFILES[name]
    host = host_of(url)
    return next((profile for profile in PROFILES.values() if profile.serves(host, url)), None)


def apply(profile: Profile | None, items: Iterator[RawItem]) -> Iterator[RawItem]:
    if profile is None:
        return items
    return (profile.fix(item) for item in items)


# ---------------------------------------------------------------- the profiles


def _without(extra: dict[str, str], *keys: str) -> dict[str, str]:
    return {key: value for key, value in extra.items() if key not in keys}


def _weworkremotely(item: RawItem) -> RawItem:
    company, title = item.company, item.title
    if title and ": " in title and not company:
        company, title = (part.strip() for part in title.split(": ", 1))
    region = (item.extra.get("region") or item.extra.get("country") or "").strip()
    kind = (item.extra.get("type") or "").strip()
    return dataclasses.replace(
        item,
        title=title,
        company=company,
        locations=item.locations or ((region,) if region else ()),
        job_types=item.job_types or ((kind,) if kind else ()),
        expires=item.expires or item.extra.get("expires_at"),
        workplace=item.workplace or "remote",
        extra=_without(item.extra, "region", "type", "expires_at"),
    )


def _wordpress_jobs(item: RawItem) -> RawItem:
    author = item.author or ""
    if not _CREATOR_BREAK.search(author):
        return item
    parts = [" ".join(_ENTITY_SPACE.sub(" ", part).split()) for part in _CREATOR_BREAK.split(author)]
    company, places = parts[0] or None, [part for part in parts[1:] if part]
    return dataclasses.replace(
        item,
        company=item.company or company,
        locations=item.locations or tuple(places),
        author=None,
    )


def _stackoverflow(item: RawItem) -> RawItem:
    company = item.company or item.author
    title = item.title or ""
    remote = _ALLOWS_REMOTE.search(title)
    if remote:
        title = title[: remote.start()]
    place = None
    if company:
        match = re.match(
            rf"^(?P<role>.+?) at {re.escape(company.strip())}(?: \((?P<place>[^()]*)\))?$", title.strip()
        )
        if match:
            title, place = match.group("role"), match.group("place")
    return dataclasses.replace(
        item,
        title=title or item.title,
        company=company,
        author=None if company == item.author else item.author,
        locations=item.locations or ((place.strip(),) if place and place.strip() else ()),
        workplace=item.workplace or ("remote" if remote else None),
    )


def _pythonorg(item: RawItem) -> RawItem:
    title, company = item.title or "", item.company
    if not company and ", " in title:
        role, _, tail = title.rpartition(", ")
        if tail.strip().lower() in _LEGAL_SUFFIXES and ", " in role:  # "Acme, Inc."
            role, _, head = role.rpartition(", ")
            tail = f"{head}, {tail}"
        title, company = role.strip(), tail.strip()
    first_line = (item.summary or "").split("\n", 1)[0].strip()
    place = first_line if first_line and "<" not in first_line and len(first_line) <= 120 else None
    return dataclasses.replace(
        item,
        title=title or item.title,
        company=company,
        locations=item.locations or ((place,) if place else ()),
    )


def _wordpress_post_feed(url: str) -> bool:
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return False
    return "job_listing" in query.get("post_type", [])


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("weworkremotely", "titles 'Company: Role', <region>, <type>", ("weworkremotely.com",),
                _weworkremotely),
        Profile("wordpress-jobs", "dc:creator 'Company<br>⚲ Location' (WP Job Manager posts)",
                ("jobspresso.co",), _wordpress_jobs, _wordpress_post_feed),
        Profile("stackoverflow", "a10:author is the company; titles 'Role at Company (Location)'",
                ("stackoverflow.com",), _stackoverflow),
        Profile("pythonorg", "titles 'Role, Company'; the description's first line is the location",
                ("python.org",), _pythonorg),
    )
}  # fmt: skip
