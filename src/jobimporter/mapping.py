"""A feed's declarative field mapping (``[feeds.mapping]`` in the sources file): where its items are
and how each field of an item is read. This module owns the mapping's shape and its validation at
load; :mod:`jobimporter.parse.mapped` applies it to a body.

- ``items``: a JSONPath-like path for JSON, starting with ``$`` (``$.data[*]``,
  ``$.SearchResult.SearchResultItems[*].MatchedObjectDescriptor``); anything else is an XML element
  path matched while the document streams: element names only, ``/source/job`` (from the root) or
  ``//job`` (anywhere), with prefixes declared in ``namespaces``.
- ``fields``: target field → rule. A plain string is a path. Paths are relative to the item: XPath
  for XML (``title``, ``location/city``, ``@id``, ``a10:author/a10:name``), JSONPath for JSON
  (``title``, ``company.name``, ``tags[*]``).
- A rule reads ``path`` (a list of paths is a fallback chain: the first that gives a value wins) or a
  constant ``value`` (a list of rules, ``["where", {value = "France"}]``, is a fallback chain too), then applies, in this order: ``regex`` (the first group, or the group named
  ``value``, of each value; values that do not match are dropped), ``split`` (each value split on
  the separator; ``take`` keeps one part by index, negative from the end), ``join`` (all values
  joined into one), ``date_format`` (each value read with ``strptime`` and written as ISO 8601;
  ``"epoch"``: seconds or milliseconds since 1970).
  When the rule gives nothing, its ``fallback`` rules are tried in order.

Targets are the parser's item fields (:data:`SCALAR_TARGETS`, :data:`LIST_TARGETS`), ``salary``
(a free text such as "Up to $75,000/year", read into min/max/currency/period) and ``extra.<name>``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Self

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext.parser import parse as jsonpath
from lxml import etree  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCALAR_TARGETS = frozenset(
    {"guid", "link", "title", "summary", "content_html", "published", "updated", "expires", "author",
     "company", "salary_min", "salary_max", "salary_currency", "salary_period", "logo_url", "apply_url",
     "workplace", "salary"}
)  # fmt: skip
LIST_TARGETS = frozenset({"locations", "job_types", "categories"})
_XML_STEP = re.compile(r"^(?:[A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*$")

MappingKind = Literal["xml", "json"]


class FieldRule(BaseModel):
    """How one field is read; see the module docstring for the order of the transforms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str | list[str] | None = None
    value: str | None = None
    regex: str | None = None
    split: str | None = Field(default=None, min_length=1)
    take: int | None = None
    join: str | None = None
    date_format: str | None = None
    fallback: list[FieldRule] = Field(default_factory=list)

    @field_validator("fallback", mode="before")
    @classmethod
    def _paths_are_rules(cls, value: object) -> object:
        return [_rule_input(item) for item in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.path is None) == (self.value is None):
            raise ValueError("give either a path or a constant value, not both or neither")
        if isinstance(self.path, list) and not self.path:
            raise ValueError("an empty list of paths")
        if self.take is not None and self.split is None:
            raise ValueError("take needs split")
        if self.regex is not None:
            _check_regex(self.regex)
        if self.date_format is not None:
            _check_date_format(self.date_format)
        return self

    @property
    def paths(self) -> list[str]:
        if self.path is None:
            return []
        return [self.path] if isinstance(self.path, str) else list(self.path)

    def chain(self) -> list[FieldRule]:
        """This rule, then its fallbacks (and theirs), in the order they are tried."""
        rules = [self]
        for rule in self.fallback:
            rules += rule.chain()
        return rules


def _rule_input(value: object) -> object:
    """A plain string is the path of a rule (``title = "title"``); a list is a fallback chain, its
    first entry the rule and the others its fallbacks (``locations = ["where", {value = "France"}]``)."""
    if isinstance(value, str):
        return {"path": value}
    if isinstance(value, list) and value:
        first = _rule_input(value[0])
        if isinstance(first, dict):
            return {**first, "fallback": [*first.get("fallback", []), *value[1:]]}
    return value


class FieldMapping(BaseModel):
    """Where a feed's items are and how each field is read (module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: str = Field(min_length=1)
    namespaces: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, FieldRule]

    @field_validator("fields", mode="before")
    @classmethod
    def _paths_are_rules(cls, value: object) -> object:
        return {k: _rule_input(v) for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if "title" not in self.fields:
            raise ValueError("fields: title is required (an item without a title cannot be stored)")
        self._check_items()
        for target, rule in self.fields.items():
            _check_target(target)
            for step in rule.chain():
                for path in step.paths:
                    self._check_path(target, path)
        return self

    @property
    def kind(self) -> MappingKind:
        return "json" if self.items.lstrip().startswith("$") else "xml"

    def rules(self) -> dict[str, FieldRule]:
        return dict(self.fields)

    def item_steps(self) -> tuple[bool, list[str]]:
        """An XML items path as (anywhere, element names): ``//a/b`` → ``(True, ["a", "b"])``."""
        text = self.items.strip()
        anywhere = text.startswith("//") or not text.startswith("/")
        return anywhere, [step for step in text.lstrip("/").split("/")]

    def _check_items(self) -> None:
        if self.kind == "json":
            _compile_json(f"items {self.items!r}", self.items)
            return
        _, steps = self.item_steps()
        for step in steps:
            if not _XML_STEP.match(step):
                raise ValueError(
                    f"items {self.items!r}: an XML items path is element names only, like /source/job or //job"
                )
            prefix = step.partition(":")[0] if ":" in step else None
            if prefix is not None and prefix not in self.namespaces:
                raise ValueError(f"items {self.items!r}: the prefix {prefix!r} is not in namespaces")

    def _check_path(self, target: str, path: str) -> None:
        where = f"fields.{target}: path {path!r}"
        if self.kind == "json":
            _compile_json(where, path)
            return
        try:
            etree.XPath(path, namespaces=self.namespaces or None)
        except etree.XPathSyntaxError as exc:
            raise ValueError(f"{where}: not a valid XPath ({exc})") from exc


def _check_target(target: str) -> None:
    if target in SCALAR_TARGETS or target in LIST_TARGETS:
        return
    if target.startswith("extra.") and len(target) > len("extra."):
        return
    known = ", ".join(sorted(SCALAR_TARGETS | LIST_TARGETS))
    raise ValueError(f"fields.{target}: unknown field (known: {known}, extra.<name>)")


def _compile_json(where: str, path: str) -> Any:
    try:
        return jsonpath(path)
    except (JsonPathParserError, Exception) as exc:  # the lexer raises plain Exceptions too
        raise ValueError(f"{where}: not a valid JSONPath ({exc})") from exc


def _check_regex(pattern: str) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regex {pattern!r}: {exc}") from exc
    if compiled.groups > 1 and "value" not in compiled.groupindex:
        raise ValueError(f"regex {pattern!r}: several groups; name the one to keep (?P<value>...)")


def _check_date_format(fmt: str) -> None:
    if fmt == "epoch":
        return
    sample = datetime(2001, 2, 3, 4, 5, 6)
    try:
        datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise ValueError(f"date_format {fmt!r}: {exc}") from exc
    if "%" not in fmt:
        raise ValueError(f"date_format {fmt!r}: no % directive")
