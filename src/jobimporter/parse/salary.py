"""Salary from free text: ``"Up to $75,000/year"``, ``"De 500€ à 1700€ par mois"``, ``"$28/hr"``.

One owner for the question every format with a salary *text* asks (WP Job Manager, Indeed's
``<salary>``, Remotive, a mapping's ``salary`` field). Amounts come back as plain number strings
(``"75000"``); normalize converts them. Rules:

- two amounts are a range; one amount is the rate (min = max), unless "up to" (… max only) or
  "from" (min only) comes before it, in English, French, German or Spanish;
- thousands separators (``75,000``, ``40.000``, ``1 700``) and a ``k`` suffix are understood; a
  decimal part has one or two digits (``1.500,50``);
- currency from a symbol (``$`` is USD unless ``C$``/``A$``/``NZ$``) or an ISO code; the period from
  the first period word (year, annum, p.a., mois, Monat, hr, /h…).

Anything not recognised is left out; nothing here raises.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:(?:[,.\u00a0\u202f]| (?=\d{3}(?!\d)))\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
    r"\s*([kK]|[mM](?![a-z]))?(?![\d])"
)
_SYMBOLS = (
    ("US$", "USD"), ("CA$", "CAD"), ("C$", "CAD"), ("AU$", "AUD"), ("A$", "AUD"), ("NZ$", "NZD"),
    ("R$", "BRL"), ("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("¥", "JPY"), ("₹", "INR"), ("zł", "PLN"),
    ("Kč", "CZK"), ("₽", "RUB"), ("₺", "TRY"), ("₩", "KRW"), ("₱", "PHP"),
)  # fmt: skip
_CODES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "CAD",
        "AUD",
        "NZD",
        "CHF",
        "JPY",
        "CNY",
        "INR",
        "BRL",
        "MXN",
        "PLN",
        "CZK",
        "HUF",
        "RON",
        "BGN",
        "SEK",
        "NOK",
        "DKK",
        "ISK",
        "TRY",
        "ZAR",
        "SGD",
        "HKD",
        "KRW",
        "PHP",
        "THB",
        "IDR",
        "MYR",
        "AED",
        "SAR",
        "ILS",
        "EGP",
        "NGN",
        "KES",
        "ARS",
        "CLP",
        "COP",
        "PEN",
        "UAH",
        "RUB",
    ]
)
_FRACTION = re.compile(r"[.,](\d{1,2})$")
_SEPARATORS = re.compile(r"[,.\u00a0\u202f ]")
_CODE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")
_PERIODS = (
    (
        "year",
        r"years?|yearly|annum|annual(?:ly)?|yr|p\.\s?a\.?|pa|jahr|jährlich|jahresgehalt|année|an|anual|año",
    ),
    ("month", r"months?|monthly|mo|mois|mensuel|monat|monatlich|mes|mensual|pm"),
    ("week", r"weeks?|weekly|wk|semaine|woche|wöchentlich|semana"),
    ("day", r"days?|daily|jour|tag|täglich|día|dia"),
    ("hour", r"hours?|hourly|hr|hrs|h|heure|stunde|stündlich|hora"),
)
_PERIOD = re.compile(
    "|".join(rf"(?P<{name}>(?<![^\W\d_])(?:{words})(?![^\W\d_]))" for name, words in _PERIODS),
    re.IGNORECASE,
)
_UP_TO = re.compile(r"\b(?:up\s+to|max(?:imum)?|jusqu['’]?\s*(?:à|a)|bis\s+zu|hasta)\b\W*$", re.IGNORECASE)
_FROM = re.compile(
    r"(?:\b(?:from|starting\s+at|min(?:imum)?|desde|ab)|à\s+partir\s+de|a\s+partir\s+de)\W*$", re.IGNORECASE
)


def salary_from_text(text: str) -> dict[str, str]:
    """``salary_min``/``salary_max``/``salary_currency``/``salary_period`` found in ``text``."""
    found: dict[str, str] = {}
    amounts = [(match.start(), amount) for match in _NUMBER.finditer(text) if (amount := _amount(match))]
    if len(amounts) >= 2:
        found["salary_min"], found["salary_max"] = amounts[0][1], amounts[1][1]
    elif amounts:
        start, amount = amounts[0]
        before = _before_amount(text, start)
        if _UP_TO.search(before):
            found["salary_max"] = amount
        elif _FROM.search(before):
            found["salary_min"] = amount
        else:
            found["salary_min"] = found["salary_max"] = amount
    if currency := currency_in(text):
        found["salary_currency"] = currency
    if period := period_in(text):
        found["salary_period"] = period
    return found


def currency_in(text: str) -> str | None:
    """The ISO code of the first currency symbol or code in ``text``."""
    for match in _CODE.finditer(text):
        if match.group(1) in _CODES:
            return match.group(1)
    for symbol, code in _SYMBOLS:
        if symbol in text:
            return code
    return None


def period_in(text: str) -> str | None:
    match = _PERIOD.search(text)
    return match.lastgroup if match else None


def _before_amount(text: str, start: int) -> str:
    """The words before an amount, without the currency sign stuck to it (``up to $75,000``)."""
    return text[:start].rstrip(" \u00a0$€£¥₹").removesuffix("US").removesuffix("CA").rstrip()


def _amount(match: re.Match[str]) -> str | None:
    value = _number(match.group(1))
    if value is None:
        return None
    suffix = (match.group(2) or "").lower()
    value *= {"k": 1_000, "m": 1_000_000}.get(suffix, 1)
    if value <= 0 or value >= 1e10:
        return None  # a phone number or an id, not a salary
    return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def _number(token: str) -> float | None:
    """``"75,000"`` → 75000, ``"40.000"`` → 40000, ``"1 700"`` → 1700, ``"1.500,50"`` → 1500.5: groups of
    three digits are thousands (the pattern only matches those), one or two trailing digits a fraction."""
    fraction = _FRACTION.search(token)
    head = token[: fraction.start()] if fraction else token
    digits = _SEPARATORS.sub("", head)
    try:
        return float(f"{digits}.{fraction.group(1)}" if fraction else digits)
    except ValueError:
        return None
