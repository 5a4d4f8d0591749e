"""NIK (Nomor Induk Kependudukan): checking one a citizen typed, and masking NIKs in text.

A NIK is 16 digits, `PP KK CC DD MM YY SSSS` (domain.md §2): province, regency/city and
kecamatan of *first* registration, birth day (+40 for women), month, two-digit year, and a
serial from 0001. No check digit is documented, so a typo that keeps the shape of a NIK cannot
be caught here; this module only rejects what cannot be a NIK, so the bot can ask again before
a citizen waits days for a ticket that names an impossible number.

Rules deliberately *not* applied:
- Regency and kecamatan codes are not looked up: old NIKs keep the codes of kecamatan that
  have since been split or renamed, and a NIK never changes when the person moves, so a code
  missing from today's Kepmendagri list proves nothing. Only the province is checked.
- The birth year's century is a guess (the NIK stores two digits); see `validate`.

Masking follows the bot's practice in domain.md §5: NIKs and KK numbers appear in logs and
notifications only as `5371********0001`. `find_in_text` and `mask_in_text` let the shell do
that on free text before logging it, whether or not the number is a valid NIK: a mistyped NIK
is still someone's personal data.

Pure: no clock. Whoever needs "not in the future" passes `today`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

__all__ = [
    "NIK_LENGTH",
    "PROBLEMS",
    "PROVINCES",
    "NikCheck",
    "find_in_text",
    "mask",
    "mask_in_text",
    "validate",
]

NIK_LENGTH = 16

# Province codes of the Kepmendagri 300.2.2-2430/2025 dataset (domain.md §2). NTT is 53;
# 91-96 are the six Papua provinces after the 2022 splits.
PROVINCES: frozenset[str] = frozenset(
    f"{code:02d}"
    for low, high in ((11, 19), (21, 21), (31, 36), (51, 53), (61, 65), (71, 76), (81, 82),
                      (91, 96))
    for code in range(low, high + 1)
)

# Stable codes for `NikCheck.problem`, in the order `validate` looks for them; the shell maps
# each to a message in the citizen's language, so they must not change.
PROBLEMS = ("digits", "length", "province", "birth_date", "future", "serial")

# What people put between digit groups when they copy a NIK from a KTP or a form:
# "5371 0112 0390 0001", "53.71.01.120390.0001", "5371-01-120390-0001". The no-break space
# arrives when the number is pasted from a PDF or a web page.
_SEPARATORS = " \u00a0.-"
_SEPARATOR_CLASS = "[ \u00a0.\\-]"
_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() also accepts "²" and "٣"

# 16 ASCII digits with at most one separator between two digits, and no digit touching
# either end (a 17-digit run is not a NIK, and neither is any 16-digit part of it).
_IN_TEXT = re.compile(
    rf"(?<![0-9])[0-9](?:{_SEPARATOR_CLASS}?[0-9]){{{NIK_LENGTH - 1}}}(?![0-9])"
)

_WOMEN_DAY_OFFSET = 40
_CENTURY_PIVOT = 30  # without `today`: YY <= 30 reads as 20YY, anything higher as 19YY
_KEEP = 4  # digits shown at each end of a masked number


@dataclass(frozen=True)
class NikCheck:
    """The outcome of `validate`.

    Exactly one of `nik` and `problem` is set. The parsed fields describe what the digits say
    even when the NIK is rejected (so a reply can say, for instance, that province 54 does not
    exist); they are empty strings / None when there were no 16 digits to read, and
    `birth_date` is None when DD/MM/YY form no real date. On a "future" problem `birth_date`
    holds that future date.
    """

    nik: str | None  # the normalised 16 digits, only when valid
    problem: str | None  # one of PROBLEMS, only when invalid
    province: str = ""  # 2 digits, e.g. "53"
    regency: str = ""  # 4 digits, e.g. "5371" (Kota Kupang)
    kecamatan: str = ""  # 6 digits, e.g. "537101" (Alak)
    birth_date: date | None = None
    female: bool | None = None  # from DD: 1-31 men, 41-71 women, otherwise unknown


def _normalise(raw: str) -> str:
    """Drop the separators people type; everything else is kept, so it can be rejected."""
    return "".join(ch for ch in raw if ch not in _SEPARATORS)


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:  # 30 February, month 13, day 0, 29 February of a common year
        return None


def _birth_date(yy: int, month: int, day: int, today: date | None) -> tuple[date | None, bool]:
    """The birth date the digits most plausibly mean, and whether it lies after `today`.

    The NIK keeps only two digits of the year. With `today` the later century wins unless it
    would put the birth in the future: somebody registering now who was born in "05" is far
    more likely 20 years old than 120. Without `today` a fixed pivot keeps the answer
    deterministic (pure code reads no clock); callers that care pass `today`.
    """
    later = _make_date(2000 + yy, month, day)
    if later is None:
        # Every date that exists in 19YY also exists in 20YY (1900 was not a leap year, 2000
        # was), so no earlier-century date is lost by stopping here.
        return None, False
    if today is None:
        return (later if yy <= _CENTURY_PIVOT else _make_date(1900 + yy, month, day)), False
    if later <= today:
        return later, False
    earlier = _make_date(1900 + yy, month, day)  # None only for 29 Feb 1900
    return earlier, earlier is not None and earlier > today


def validate(raw: str, *, today: date | None = None) -> NikCheck:
    """Check a NIK as typed by a citizen; never raises, whatever the text.

    Spaces, no-break spaces, dots and hyphens are removed first; any other non-digit makes the
    problem "digits". Then, in this order, the first failing rule names the problem: exactly
    16 digits ("length"), a known province ("province"), a real birth date with DD 1-31 for
    men or 41-71 for women and MM 1-12 ("birth_date"), not after `today` ("future"; only
    checked when `today` is given), and a serial other than 0000 ("serial").

    The century of the birth year is ambiguous: with `today`, 20YY unless that date is after
    `today`, then 19YY; without it, 20YY for YY <= 30 and 19YY above. So "future" can only
    happen when even 19YY is after `today`, i.e. it guards against a wrong `today`.
    """
    if isinstance(today, datetime):  # a datetime would not compare with the dates below
        today = today.date()
    digits = _normalise(raw.strip())
    if not all(ch in _DIGITS for ch in digits):
        return NikCheck(nik=None, problem="digits")
    if len(digits) != NIK_LENGTH:
        return NikCheck(nik=None, problem="length")

    dd, month, yy = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    female: bool | None = None
    if 1 <= dd <= 31:
        female = False
    elif _WOMEN_DAY_OFFSET + 1 <= dd <= _WOMEN_DAY_OFFSET + 31:
        female = True
    born: date | None = None
    future = False
    if female is not None:
        day = dd - _WOMEN_DAY_OFFSET if female else dd
        born, future = _birth_date(yy, month, day, today)

    problem: str | None = None
    if digits[:2] not in PROVINCES:
        problem = "province"
    elif born is None:
        problem = "birth_date"
    elif future:
        problem = "future"
    elif digits[12:] == "0000":
        problem = "serial"
    return NikCheck(
        nik=digits if problem is None else None,
        problem=problem,
        province=digits[:2],
        regency=digits[:4],
        kecamatan=digits[:6],
        birth_date=born,
        female=female,
    )


def mask(nik: str) -> str:
    """Hide the middle of a NIK or KK number for logs and notifications: `5371********0001`.

    The separators `validate` accepts are removed first, so a NIK typed in groups masks to
    the same 16 characters. The first and last 4 characters stay (enough for staff to tell
    two numbers apart and for the citizen to recognise their own) and the rest become `*`;
    anything shorter than 8 characters is all `*`, so at most 8 digits are ever shown.
    Never raises.
    """
    compact = _normalise(nik)
    if len(compact) < 2 * _KEEP:
        return "*" * len(compact)
    return compact[:_KEEP] + "*" * (len(compact) - 2 * _KEEP) + compact[-_KEEP:]


def find_in_text(text: str) -> list[str]:
    """Every 16-digit number in free text, normalised to its 16 digits, in order.

    Groups may be joined by one space, no-break space, dot or hyphen. Validity is not
    checked: the point is to mask before logging, and a wrong NIK is still personal data.
    Runs of more than 16 digits (account numbers, two NIKs glued together) are not returned;
    a 12-digit phone number such as 081234567890 is not either. Grouped digits that merely
    add up to 16 (a phone number followed by a year) are, erring on the side of privacy.
    """
    return [_normalise(m.group()) for m in _IN_TEXT.finditer(text)]


def mask_in_text(text: str) -> str:
    """`text` with each number `find_in_text` finds replaced by its `mask`."""
    return _IN_TEXT.sub(lambda m: mask(m.group()), text)
