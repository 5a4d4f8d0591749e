"""NIK checks and masking (flows/nik.py). All NIKs here are made up from the documented layout
`PP KK CC DD MM YY SSSS`; none belongs to a real person."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.nik import PROBLEMS, NikCheck, find_in_text, mask, mask_in_text, validate

MALE = "5371011203900001"  # Kota Kupang, Alak; man born 12 March 1990
FEMALE = "5371045203900002"  # Kota Kupang, Oebobo; woman born 12 March 1990 (52 = 12 + 40)


def make(*, pp: str = "53", kk: str = "71", cc: str = "01", dd: str = "12", mm: str = "03",
         yy: str = "90", serial: str = "0001") -> str:
    number = pp + kk + cc + dd + mm + yy + serial
    assert len(number) == 16, number
    return number


def test_valid_male_nik_of_kota_kupang() -> None:
    check = validate(MALE)
    assert check == NikCheck(nik=MALE, problem=None, province="53", regency="5371",
                             kecamatan="537101", birth_date=date(1990, 3, 12), female=False)


def test_valid_female_nik_of_kota_kupang() -> None:
    check = validate(FEMALE)
    assert check.nik == FEMALE and check.problem is None
    assert check.female is True
    assert check.birth_date == date(1990, 3, 12)  # the +40 is taken off the day
    assert (check.regency, check.kecamatan) == ("5371", "537104")


@pytest.mark.parametrize("typed", [
    "5371 0112 0390 0001",
    "53.71.01.120390.0001",
    "5371-01-120390-0001",
    "  5371011203900001\n",
    "5371\u00a00112\u00a00390\u00a00001",  # pasted from a PDF
])
def test_separators_people_type_are_removed(typed: str) -> None:
    assert validate(typed).nik == MALE


@pytest.mark.parametrize(("raw", "problem"), [
    ("537101120390000", "length"),
    ("53710112039000011", "length"),
    ("", "length"),
    ("5371O11203900001", "digits"),  # letter O for zero
    ("5371/01/120390/0001", "digits"),
    ("53710112039000٠1", "digits"),  # Arabic-Indic zero: str.isdigit() would accept it
    ("NIK 5371011203900001", "digits"),
    (make(pp="54"), "province"),
    (make(mm="13"), "birth_date"),
    (make(mm="00"), "birth_date"),
    (make(dd="00"), "birth_date"),
    (make(dd="30", mm="02"), "birth_date"),
    (make(dd="31", mm="04"), "birth_date"),
    (make(serial="0000"), "serial"),
])
def test_each_problem_code(raw: str, problem: str) -> None:
    check = validate(raw)
    assert check.problem == problem
    assert check.nik is None


def test_future_birth_date_is_rejected_only_against_today() -> None:
    # Both 2090 and 1990 are after a `today` in 1980, so no century makes it plausible.
    assert validate(MALE, today=date(1980, 1, 1)).problem == "future"
    assert validate(MALE, today=date(1990, 3, 11)).problem == "future"
    assert validate(MALE, today=date(1990, 3, 12)).nik == MALE  # born today is fine


def test_problem_order_reports_the_first_failing_rule() -> None:
    assert validate(make(pp="54", mm="13", serial="0000")).problem == "province"
    assert validate(make(mm="13", serial="0000")).problem == "birth_date"


def test_rejected_nik_still_reports_what_the_digits_say() -> None:
    check = validate(make(pp="54", dd="52"))
    assert (check.province, check.regency, check.kecamatan) == ("54", "5471", "547101")
    assert check.female is True and check.birth_date == date(1990, 3, 12)
    assert validate("12345").province == ""


@pytest.mark.parametrize(("yy", "leap_year"), [("04", 2004), ("96", 1996), ("00", 2000)])
def test_29_february_exists_in_leap_years(yy: str, leap_year: int) -> None:
    check = validate(make(dd="29", mm="02", yy=yy))
    assert check.problem is None
    assert check.birth_date == date(leap_year, 2, 29)
    assert validate(make(dd="69", mm="02", yy=yy)).birth_date == date(leap_year, 2, 29)


@pytest.mark.parametrize("yy", ["03", "97", "01"])
def test_29_february_of_a_common_year_is_rejected(yy: str) -> None:
    assert validate(make(dd="29", mm="02", yy=yy)).problem == "birth_date"
    assert validate(make(dd="69", mm="02", yy=yy)).problem == "birth_date"


def test_29_february_00_is_only_valid_as_2000() -> None:
    # Before 29 Feb 2000 the only other reading is 1900, which was not a leap year.
    assert validate(make(dd="29", mm="02", yy="00"), today=date(1999, 6, 1)).problem == (
        "birth_date")
    assert validate(make(dd="29", mm="02", yy="00"), today=date(2000, 2, 29)).birth_date == (
        date(2000, 2, 29))


@pytest.mark.parametrize(("yy", "today", "born"), [
    ("24", date(2024, 6, 15), date(2024, 6, 15)),  # the same day is not after today
    ("24", date(2024, 6, 14), date(1924, 6, 15)),  # 2024 would be tomorrow
    ("05", date(2026, 1, 1), date(2005, 6, 15)),
    ("90", date(2026, 1, 1), date(1990, 6, 15)),
    ("30", date(2026, 1, 1), date(1930, 6, 15)),  # with today the pivot below does not apply
])
def test_century_choice_with_today(yy: str, today: date, born: date) -> None:
    check = validate(make(dd="15", mm="06", yy=yy), today=today)
    assert check.problem is None
    assert check.birth_date == born


@pytest.mark.parametrize(("yy", "year"), [("00", 2000), ("30", 2030), ("31", 1931),
                                          ("99", 1999)])
def test_century_without_today_uses_a_fixed_pivot(yy: str, year: int) -> None:
    assert validate(make(dd="15", mm="06", yy=yy)).birth_date == date(year, 6, 15)


def test_today_may_be_a_datetime() -> None:
    assert validate(MALE, today=datetime(2026, 5, 1, 9, 30)).nik == MALE


@pytest.mark.parametrize(("dd", "female", "day"), [
    ("01", False, 1), ("31", False, 31), ("41", True, 1), ("71", True, 31),
])
def test_day_ranges_for_men_and_women(dd: str, female: bool, day: int) -> None:
    check = validate(make(dd=dd, mm="01"))  # January has 31 days
    assert check.problem is None
    assert check.female is female
    assert check.birth_date == date(1990, 1, day)


@pytest.mark.parametrize("dd", ["00", "32", "40", "72", "99"])
def test_days_outside_both_ranges_are_rejected(dd: str) -> None:
    check = validate(make(dd=dd, mm="01"))
    assert check.problem == "birth_date"
    assert check.birth_date is None and check.female is None


@pytest.mark.parametrize("pp", ["53", "96", "11", "21", "31", "51", "61", "71", "81", "91"])
def test_known_provinces_are_accepted(pp: str) -> None:
    assert validate(make(pp=pp)).problem is None


@pytest.mark.parametrize("pp", ["54", "00", "10", "20", "22", "37", "50", "66", "77", "83",
                                "90", "97", "99"])
def test_unknown_provinces_are_rejected(pp: str) -> None:
    assert validate(make(pp=pp)).problem == "province"


def test_unknown_regency_and_kecamatan_are_not_rejected() -> None:
    # Old NIKs keep the codes of since-split kecamatan (domain.md §2); Kota Kupang has only
    # six kecamatan today and no regency 5399 exists, yet both must pass.
    assert validate(make(cc="99")).problem is None
    assert validate(make(kk="99", cc="99")).problem is None


def test_nik_check_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        validate(MALE).nik = FEMALE  # type: ignore[misc]


@pytest.mark.parametrize(("raw", "masked"), [
    (MALE, "5371********0001"),
    ("5371 0112 0390 0001", "5371********0001"),
    ("53.71.01.120390.0001", "5371********0001"),
    ("", ""),
    ("1234567", "*******"),
    ("12345678", "12345678"),
    ("123456789", "1234*6789"),
    ("53710112039000011234", "5371************1234"),
    ("abc", "***"),
])
def test_mask(raw: str, masked: str) -> None:
    assert mask(raw) == masked


def test_mask_in_text_hides_two_niks_and_keeps_the_phone_number() -> None:
    text = (f"Saya {MALE} dan istri 5371 0452 0390 0002 minta KK baru, "
            "hubungi 081234567890 jam 08.00-16.00.")
    assert find_in_text(text) == [MALE, FEMALE]
    assert mask_in_text(text) == (
        "Saya 5371********0001 dan istri 5371********0002 minta KK baru, "
        "hubungi 081234567890 jam 08.00-16.00.")


@pytest.mark.parametrize(("text", "found"), [
    ("no numbers here", []),
    ("telp 081234567890", []),
    ("rekening 53710112039000011", []),  # 17 digits: no 16-digit part of it is a NIK
    (f"{MALE} {FEMALE}", [MALE, FEMALE]),  # two NIKs one space apart stay two
    (f"{MALE}\n{FEMALE}", [MALE, FEMALE]),
    (f"NIK:{MALE}.", [MALE]),
    ("53.71.01.120390.0001, ok", [MALE]),
    ("5371  0112 0390 0001", []),  # a double space is not a separator
    ("0812 3456 7890 2026", ["0812345678902026"]),  # adds up to 16: masked, to be safe
])
def test_find_in_text(text: str, found: list[str]) -> None:
    assert find_in_text(text) == found


def test_nik_next_to_a_longer_digit_group_is_still_found() -> None:
    # "1234 " + NIK: the first 16 digits counted from 1234 end inside the NIK, so they are
    # not a match, and the NIK itself still is.
    assert find_in_text(f"1234 {MALE}") == [MALE]
    assert mask_in_text(f"1234 {MALE}") == "1234 5371********0001"


@given(st.text())
def test_validate_never_raises_and_names_exactly_one_outcome(raw: str) -> None:
    check = validate(raw, today=date(2026, 1, 1))
    assert (check.nik is None) != (check.problem is None)
    assert check.problem is None or check.problem in PROBLEMS
    if check.nik is not None:
        assert re.fullmatch(r"[0-9]{16}", check.nik)


@given(st.text(alphabet=st.characters(codec="utf-8")) | st.text(alphabet="0123456789 .-"))
def test_mask_never_shows_more_than_eight_digits(raw: str) -> None:
    masked = mask(raw)
    assert sum(ch.isdigit() for ch in masked) <= 8


@given(st.text(), st.from_regex(r"[0-9]{16}", fullmatch=True), st.text())
def test_a_nik_between_spaces_is_always_found_and_masked(before: str, nik: str,
                                                         after: str) -> None:
    text = f"{before} {nik} {after}"
    assert nik in find_in_text(text)
    # `before` and `after` may hold 16-digit numbers of their own, masked as well
    assert f" {nik[:4]}********{nik[-4:]} " in mask_in_text(text)
