"""Temporal and spatial semantics: constructors, parsing, components, arithmetic, formatting.

`store.values` owns the shapes; this module owns what they mean in Cypher, following
Neo4j (ISO-8601 strings, week dates, named zones through `zoneinfo`, durations kept as
months, days, seconds and nanoseconds). Operations that do not apply return NotImplemented
so that the caller raises a TypeError.

Zone rules come from the pinned `tzdata` package, never from the host's /usr/share/zoneinfo:
every replica applies the same statements, so they must all read a zone's history from the
same release (hosts differ: Debian builds Europe/Stockholm from `backzone`, +01:12:12 in
1818, where the IANA main data and Neo4j say +00:53:28).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import math
import re
import time as _time
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cypher.errors import CypherError, argument_error, type_error
from store import values as sv

NANOS = 1_000_000_000
DAY_S = 86_400
DAY_NS = DAY_S * NANOS
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_PY_MIN_DAY = dt.date(1, 1, 2).toordinal() - EPOCH_ORDINAL
_PY_MAX_DAY = dt.date(9999, 12, 30).toordinal() - EPOCH_ORDINAL
AVG_MONTH_S = 2_629_746  # 30.436875 days, as Neo4j converts fractional months
Date, LocalTime, Time, LocalDateTime, DateTime, Duration, Point = (
    sv.Date,
    sv.LocalTime,
    sv.Time,
    sv.LocalDateTime,
    sv.DateTime,
    sv.Duration,
    sv.Point,
)


def _bad(message: str) -> CypherError:
    return argument_error(message, "InvalidArgumentValue")


# -- calendar helpers ----------------------------------------------------------------------


MIN_YEAR = -999_999_999
MAX_YEAR = 999_999_999
"""Neo4j's range of years, far beyond Python's `datetime.date` (1..9999)."""
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class _Civil(NamedTuple):
    """A proleptic Gregorian date (any year in range), computed with integers only."""

    year: int
    month: int
    day: int
    epoch_day: int

    def isoweekday(self) -> int:
        return (self.epoch_day + 3) % 7 + 1  # 1970-01-01 was a Thursday

    def isocalendar(self) -> tuple[int, int, int]:
        weekday = self.isoweekday()
        thursday = self.epoch_day - weekday + 4
        iso_year = _ymd(thursday).year
        week = (thursday - _days_from_civil(iso_year, 1, 1)) // 7 + 1
        return iso_year, week, weekday


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's days_from_civil, with Python's floor division.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _ymd(epoch_day: int) -> _Civil:
    shifted = epoch_day + 719_468
    era = shifted // 146_097
    day_of_era = shifted - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    year = year_of_era + era * 400 + (month <= 2)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _bad("date out of range")
    return _Civil(year, month, day, epoch_day)


def _days_in_month(year: int, month: int) -> int:
    return 29 if month == 2 and _leap(year) else _MONTH_DAYS[month - 1]


def _epoch_day(year: int, month: int, day: int) -> int:
    if (
        not MIN_YEAR <= year <= MAX_YEAR
        or not 1 <= month <= 12
        or not 1 <= day <= _days_in_month(year, month)
    ):
        raise _bad(f"invalid date {year}-{month}-{day}")
    return _days_from_civil(year, month, day)


def _week_date(year: int, week: int, day_of_week: int) -> int:
    january_4 = _epoch_day(year, 1, 4)
    first_monday = january_4 - (_ymd(january_4).isoweekday() - 1)
    weeks = 53 if _ymd(_epoch_day(year, 12, 28)).isocalendar()[1] == 53 else 52
    if not 1 <= week <= weeks or not 1 <= day_of_week <= 7:
        raise _bad(f"invalid week date {year}-W{week}-{day_of_week}")
    return first_monday + (week - 1) * 7 + day_of_week - 1


def _local_nanos(value: Any) -> int:
    """Nanoseconds of the day of a value with a time part."""
    if isinstance(value, (LocalTime, Time)):
        return value.nanos_of_day
    if isinstance(value, LocalDateTime):
        return (value.epoch_seconds % DAY_S) * NANOS + value.nanos
    if isinstance(value, DateTime):
        local = value.epoch_seconds + value.offset_seconds
        return (local % DAY_S) * NANOS + value.nanos
    raise TypeError(value)


def _local_day(value: Any) -> int:
    if isinstance(value, Date):
        return value.epoch_day
    if isinstance(value, LocalDateTime):
        return value.epoch_seconds // DAY_S
    if isinstance(value, DateTime):
        return (value.epoch_seconds + value.offset_seconds) // DAY_S
    raise TypeError(value)


def _zone_offset(zone: str | None, offset: int | None, day: int, nanos: int) -> int:
    if zone is None:
        return offset or 0
    # Zone rules are fixed far from the present: outside Python's years use the nearest.
    day = min(max(day, _PY_MIN_DAY), _PY_MAX_DAY)
    local = dt.datetime(1970, 1, 1) + dt.timedelta(days=day, microseconds=nanos // 1000)
    try:
        info = zone_info(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _bad(f"unknown time zone {zone}") from None
    delta = info.utcoffset(local)
    return int(delta.total_seconds()) if delta is not None else 0


_ZONE_CACHE_SIZE = 512
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")


@functools.lru_cache(maxsize=_ZONE_CACHE_SIZE)
def zone_info(name: str) -> ZoneInfo:
    """The rules of the IANA zone `name` from the `tzdata` package (ZoneInfoNotFoundError
    when it has no such zone). Only when that package is missing altogether does it fall
    back to the host's zone data, so that a broken install still runs."""
    if not _ZONE_NAME.fullmatch(name):
        raise ZoneInfoNotFoundError(name)
    try:
        root = importlib.resources.files("tzdata.zoneinfo")
    except ModuleNotFoundError:
        return ZoneInfo(name)
    resource = root.joinpath(*name.split("/"))
    if not resource.is_file():
        raise ZoneInfoNotFoundError(name)
    with resource.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


def _make_datetime(day: int, nanos: int, offset: int | None, zone: str | None) -> DateTime:
    offset_seconds = _zone_offset(zone, offset, day, nanos)
    local_seconds = day * DAY_S + nanos // NANOS
    return DateTime(local_seconds - offset_seconds, nanos % NANOS, offset_seconds, zone)


def _zone_of(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, DateTime):
        return value.offset_seconds, value.zone_id
    if isinstance(value, Time):
        return value.offset_seconds, None
    return None, None


# -- parsing -------------------------------------------------------------------------------

_DATE_PATTERNS = [
    (re.compile(r"([+-]?\d{4,9})-(\d{2})-(\d{2})"), "ymd"),
    (re.compile(r"([+-]?\d{4})(\d{2})(\d{2})"), "ymd"),
    (re.compile(r"([+-]?\d{4,9})-W(\d{2})-(\d)"), "wd"),
    (re.compile(r"([+-]?\d{4})W(\d{2})(\d)"), "wd"),
    (re.compile(r"([+-]?\d{4,9})-W(\d{2})"), "w"),
    (re.compile(r"([+-]?\d{4})W(\d{2})"), "w"),
    (re.compile(r"([+-]?\d{4,9})-(\d{3})"), "o"),
    (re.compile(r"([+-]?\d{4})(\d{3})"), "o"),
    (re.compile(r"([+-]?\d{4,9})-(\d{2})"), "ym"),
    (re.compile(r"([+-]?\d{4})(\d{2})"), "ym"),
    (re.compile(r"([+-]?\d{4,9})"), "y"),
]
_TIME = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d{1,9}))?)?)?")
_ZONE = re.compile(r"(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?(?:\[([^\]]+)\])?$")


def parse_date(text: str) -> int:
    for pattern, kind in _DATE_PATTERNS:
        m = pattern.fullmatch(text)
        if not m:
            continue
        year = int(m.group(1))
        if kind == "ymd":
            return _epoch_day(year, int(m.group(2)), int(m.group(3)))
        if kind == "wd":
            return _week_date(year, int(m.group(2)), int(m.group(3)))
        if kind == "w":
            return _week_date(year, int(m.group(2)), 1)
        if kind == "o":
            ordinal = int(m.group(2))
            if not 1 <= ordinal <= (366 if _leap(year) else 365):
                raise _bad(f"invalid ordinal day {text}")
            return _epoch_day(year, 1, 1) + ordinal - 1
        if kind == "ym":
            return _epoch_day(year, int(m.group(2)), 1)
        return _epoch_day(year, 1, 1)
    raise _bad(f"invalid date {text!r}")


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def parse_time(text: str) -> tuple[int, int | None, str | None]:
    """(nanos of day, offset seconds or None, zone id or None)."""
    m = _TIME.match(text)
    if not m:
        raise _bad(f"invalid time {text!r}")
    hour = int(m.group(1))
    minute = int(m.group(2) or 0)
    second = int(m.group(3) or 0)
    fraction = m.group(4) or ""
    nanos = int((fraction + "000000000")[:9]) if fraction else 0
    if hour > 23 or minute > 59 or second > 59:
        raise _bad(f"invalid time {text!r}")
    rest = text[m.end() :]
    offset, zone = parse_zone(rest) if rest else (None, None)
    return ((hour * 60 + minute) * 60 + second) * NANOS + nanos, offset, zone


def parse_zone(text: str) -> tuple[int | None, str | None]:
    m = _ZONE.fullmatch(text)
    if not m:
        if re.fullmatch(r"[A-Za-z_]+(?:/[A-Za-z_+\-0-9]+)*", text):
            return None, text
        raise _bad(f"invalid time zone {text!r}")
    offset_text, zone = m.group(1), m.group(2)
    offset = _parse_offset(offset_text) if offset_text else None
    return offset, zone


def _parse_offset(text: str) -> int:
    if text == "Z":
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4] or 0)
    seconds = int(digits[4:6] or 0)
    if hours > 18 or minutes > 59:
        raise _bad(f"invalid offset {text!r}")
    return sign * (hours * 3600 + minutes * 60 + seconds)


def _timezone_arg(value: Any) -> tuple[int | None, str | None]:
    if not isinstance(value, str):
        raise _bad("timezone must be a string")
    if re.fullmatch(r"Z|[+-]\d{2}(:?\d{2}(:?\d{2})?)?", value):
        return _parse_offset(value), None
    return None, value


def _split_datetime(text: str) -> tuple[str, str | None]:
    if "T" in text:
        date_part, time_part = text.split("T", 1)
        return date_part, time_part
    return text, None


_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?[\d.]+)Y)?(?:([-+]?[\d.]+)M)?(?:([-+]?[\d.]+)W)?(?:([-+]?[\d.]+)D)?"
    r"(?:T(?:([-+]?[\d.]+)H)?(?:([-+]?[\d.]+)M)?(?:([-+]?[\d.]+)S)?)?"
)
_DURATION_ALT = re.compile(r"P(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)")


def parse_duration(text: str) -> Duration:
    alt = _DURATION_ALT.fullmatch(text)
    if alt:
        y, mo, d, h, mi, s = alt.groups()
        return duration_from_map(
            {
                "years": int(y),
                "months": int(mo),
                "days": int(d),
                "hours": int(h),
                "minutes": int(mi),
                "seconds": float(s) if "." in s else int(s),
            }
        )
    m = _DURATION.fullmatch(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise _bad(f"invalid duration {text!r}")
    sign = -1 if m.group(1) == "-" else 1
    names = ["years", "months", "weeks", "days", "hours", "minutes", "seconds"]
    parts: dict[str, Any] = {}
    for name, raw in zip(names, m.groups()[1:], strict=True):
        if raw is not None:
            number: Any = float(raw) if "." in raw else int(raw)
            parts[name] = sign * number
    return duration_from_map(parts)


# -- durations -----------------------------------------------------------------------------


def _make_duration(months: Any, days: Any, seconds: Any, nanos: Any) -> Duration:
    months, days, seconds, nanos = (Fraction(v) for v in (months, days, seconds, nanos))
    month_int = int(months)
    days = days + (months - month_int) * AVG_MONTH_S / DAY_S
    day_int = int(days)
    total_nanos = round((seconds + (days - day_int) * DAY_S) * NANOS + nanos)
    sec, nano = divmod(total_nanos, NANOS)
    for part in (month_int, day_int, sec):
        if not sv.INT64_MIN <= part <= sv.INT64_MAX:
            raise argument_error("duration out of range", "NumberOutOfRange")
    return Duration(month_int, day_int, int(sec), int(nano))


def duration_from_map(parts: dict[str, Any]) -> Duration:
    units = {
        "years": ("m", 12),
        "quarters": ("m", 3),
        "months": ("m", 1),
        "weeks": ("d", 7),
        "days": ("d", 1),
        "hours": ("s", 3600),
        "minutes": ("s", 60),
        "seconds": ("s", 1),
        "milliseconds": ("n", 1_000_000),
        "microseconds": ("n", 1_000),
        "nanoseconds": ("n", 1),
    }
    months: float = 0
    days: float = 0
    seconds: float = 0
    nanos: float = 0
    for key, value in parts.items():
        unit = units.get(key.lower() if key.lower() != "years" else "years")
        if unit is None:
            unit = {k.lower(): v for k, v in units.items()}.get(key.lower())
        if unit is None:
            raise _bad(f"unknown duration component {key}")
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _bad(f"duration component {key} must be a number")
        kind, factor = unit
        if kind == "m":
            months += value * factor
        elif kind == "d":
            days += value * factor
        elif kind == "s":
            seconds += value * factor
        else:
            nanos += value * factor
    return _make_duration(months, days, seconds, nanos)


def _duration_total_nanos(value: Duration) -> int:
    return value.seconds * NANOS + value.nanos


def _toward_zero(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // denominator
    return -quotient if numerator < 0 else quotient


def format_duration(value: Duration) -> str:
    out = "P"
    years, months = int(value.months / 12), value.months - int(value.months / 12) * 12
    if years:
        out += f"{years}Y"
    if months:
        out += f"{months}M"
    if value.days:
        out += f"{value.days}D"
    total = _duration_total_nanos(value)
    if total == 0:
        return out + ("T0S" if out == "P" else "")
    out += "T"
    # Integer division toward zero: the totals can exceed a float's exact range.
    hours = _toward_zero(total, 3600 * NANOS)
    total -= hours * 3600 * NANOS
    minutes = _toward_zero(total, 60 * NANOS)
    total -= minutes * 60 * NANOS
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if total:
        sign = "-" if total < 0 else ""
        whole, frac = divmod(abs(total), NANOS)
        text = f"{sign}{whole}"
        if frac:
            text += "." + f"{frac:09d}".rstrip("0")
        out += f"{text}S"
    return out


# -- formatting ----------------------------------------------------------------------------


def _format_date(epoch_day: int) -> str:
    day = _ymd(epoch_day)
    year = day.year
    # ISO 8601 beyond four digits, as Neo4j prints: +10000, -0001.
    text = f"+{year}" if year > 9999 else f"{year:04d}" if year >= 0 else f"-{-year:04d}"
    return f"{text}-{day.month:02d}-{day.day:02d}"


def _format_time(nanos_of_day: int) -> str:
    seconds, nanos = divmod(nanos_of_day, NANOS)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}"
    if secs or nanos:
        text += f":{secs:02d}"
    if nanos:
        if nanos % 1_000_000 == 0:
            text += f".{nanos // 1_000_000:03d}"
        elif nanos % 1000 == 0:
            text += f".{nanos // 1000:06d}"
        else:
            text += f".{nanos:09d}"
    return text


def _format_offset(offset: int) -> str:
    if offset == 0:
        return "Z"
    sign = "-" if offset < 0 else "+"
    hours, rest = divmod(abs(offset), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if seconds:
        text += f":{seconds:02d}"
    return text


def format_value(value: Any) -> str:
    if isinstance(value, Date):
        return _format_date(value.epoch_day)
    if isinstance(value, LocalTime):
        return _format_time(value.nanos_of_day)
    if isinstance(value, Time):
        return _format_time(value.nanos_of_day) + _format_offset(value.offset_seconds)
    if isinstance(value, LocalDateTime):
        return _format_date(value.epoch_seconds // DAY_S) + "T" + _format_time(_local_nanos(value))
    if isinstance(value, DateTime):
        text = (
            _format_date(_local_day(value))
            + "T"
            + _format_time(_local_nanos(value))
            + _format_offset(value.offset_seconds)
        )
        if value.zone_id:
            text += f"[{value.zone_id}]"
        return text
    if isinstance(value, Duration):
        return format_duration(value)
    if isinstance(value, Point):
        if value.srid in (4326, 4979):
            coords = f"x: {_num(value.x)}, y: {_num(value.y)}"
            crs = "wgs-84" if value.srid == 4326 else "wgs-84-3d"
        else:
            coords = f"x: {_num(value.x)}, y: {_num(value.y)}"
            crs = "cartesian" if value.srid == 7203 else "cartesian-3d"
        if value.z is not None:
            coords += f", z: {_num(value.z)}"
        return f"point({{{coords}, crs: '{crs}'}})"
    raise type_error(f"cannot format {value!r}")


def _num(value: float) -> str:
    from cypher.functions import format_float

    return format_float(float(value))


# -- constructors --------------------------------------------------------------------------


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{name} must be a number")
    return int(value)


def _date_from_map(fields: dict[str, Any]) -> int:
    keys = {k.lower(): v for k, v in fields.items()}
    base = keys.get("date")
    if base is not None:
        base_day = _local_day(base) if not isinstance(base, Date) else base.epoch_day
        current = _ymd(base_day)
        year = _int(keys.get("year", current.year), "year")
        if "week" in keys or "dayofweek" in keys:
            iso = current.isocalendar()
            week_year = year if "year" in keys else iso[0]
            return _week_date(
                week_year,
                _int(keys.get("week", iso[1]), "week"),
                _int(keys.get("dayofweek", iso[2]), "dayOfWeek"),
            )
        if "ordinalday" in keys:
            return _epoch_day(year, 1, 1) + _int(keys["ordinalday"], "ordinalDay") - 1
        if "quarter" in keys or "dayofquarter" in keys:
            quarter = _int(keys.get("quarter", (current.month - 1) // 3 + 1), "quarter")
            start = _epoch_day(year, (quarter - 1) * 3 + 1, 1)
            doq = keys.get("dayofquarter")
            if doq is None:
                doq = base_day - _epoch_day(current.year, ((current.month - 1) // 3) * 3 + 1, 1) + 1
            return start + _int(doq, "dayOfQuarter") - 1
        return _epoch_day(
            year,
            _int(keys.get("month", current.month), "month"),
            _int(keys.get("day", current.day), "day"),
        )
    if "year" not in keys:
        raise _bad("a date needs a year")
    year = _int(keys["year"], "year")
    if "week" in keys:
        return _week_date(year, _int(keys["week"], "week"), _int(keys.get("dayofweek", 1), "dow"))
    if "ordinalday" in keys:
        ordinal = _int(keys["ordinalday"], "ordinalDay")
        if not 1 <= ordinal <= (366 if _leap(year) else 365):
            raise _bad("invalid ordinal day")
        return _epoch_day(year, 1, 1) + ordinal - 1
    if "quarter" in keys:
        quarter = _int(keys["quarter"], "quarter")
        if not 1 <= quarter <= 4:
            raise _bad("invalid quarter")
        start = _epoch_day(year, (quarter - 1) * 3 + 1, 1)
        day_of_quarter = _int(keys.get("dayofquarter", 1), "dayOfQuarter")
        result = start + day_of_quarter - 1
        if _ymd(result).month > quarter * 3 or day_of_quarter < 1:
            raise _bad("invalid day of quarter")
        return result
    if "day" in keys and "month" not in keys:
        raise _bad("a day needs a month")
    return _epoch_day(year, _int(keys.get("month", 1), "month"), _int(keys.get("day", 1), "day"))


def _time_from_map(fields: dict[str, Any], base_nanos: int | None = None) -> int:
    keys = {k.lower(): v for k, v in fields.items()}
    if base_nanos is not None:
        secs, nanos = divmod(base_nanos, NANOS)
        hour0, rest = divmod(secs, 3600)
        minute0, second0 = divmod(rest, 60)
    else:
        hour0 = minute0 = second0 = nanos = 0
        if "hour" not in keys and any(
            k in keys for k in ("minute", "second", "millisecond", "microsecond", "nanosecond")
        ):
            raise _bad("a time needs an hour")
        if "minute" not in keys and "second" in keys:
            raise _bad("seconds need minutes")
    hour = _int(keys.get("hour", hour0), "hour")
    minute = _int(keys.get("minute", minute0), "minute")
    second = _int(keys.get("second", second0), "second")
    if any(k in keys for k in ("millisecond", "microsecond", "nanosecond")):
        sub = 0
        if "millisecond" in keys:
            sub += _int(keys["millisecond"], "millisecond") * 1_000_000
        elif base_nanos is not None:
            sub += (nanos // 1_000_000) * 1_000_000
        if "microsecond" in keys:
            sub += _int(keys["microsecond"], "microsecond") * 1000
        elif base_nanos is not None and "millisecond" not in keys:
            sub += ((nanos // 1000) % 1000) * 1000
        if "nanosecond" in keys:
            sub += _int(keys["nanosecond"], "nanosecond")
        elif base_nanos is not None and not ("millisecond" in keys or "microsecond" in keys):
            sub += nanos % 1000
        nanos = sub
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60 and 0 <= nanos < NANOS):
        raise _bad("invalid time")
    return ((hour * 60 + minute) * 60 + second) * NANOS + nanos


_TIME_KEYS = ("hour", "minute", "second", "millisecond", "microsecond", "nanosecond")


def _construct(kind: str, ctx: Any, *args: Any) -> Any:
    if not args:
        return _now(kind, ctx, None)
    value = args[0]
    if value is None:
        return None
    if isinstance(value, str):
        return _from_string(kind, value)
    if isinstance(value, dict):
        return _from_map(kind, value)
    if isinstance(value, (Date, LocalTime, Time, LocalDateTime, DateTime)):
        return _from_map(kind, _selection_map(kind, value))
    raise type_error(
        f"{kind}() cannot be built from {type(value).__name__}", "InvalidArgumentValue"
    )


def _selection_map(kind: str, value: Any) -> dict[str, Any]:
    if kind == "date":
        return {"date": value}
    if kind in ("localtime", "time"):
        return {"time": value}
    return {"datetime": value}


def _now(kind: str, ctx: Any, zone: Any) -> Any:
    millis = getattr(ctx, "statement_time_ms", int(_time.time() * 1000))
    seconds, ms = divmod(millis, 1000)
    value = DateTime(seconds, ms * 1_000_000, 0, None)
    if zone is not None:
        offset, zone_id = _timezone_arg(zone)
        day = seconds // DAY_S
        value = _make_datetime(day, (seconds % DAY_S) * NANOS + ms * 1_000_000, 0, None)
        if zone_id is not None or offset:
            off = _zone_offset(zone_id, offset, day, 0)
            value = DateTime(seconds, ms * 1_000_000, off, zone_id)
    return _from_map(kind, _selection_map(kind, value))


def _from_string(kind: str, text: str) -> Any:
    if kind == "date":
        return Date(parse_date(text))
    if kind in ("localtime", "time"):
        nanos, offset, zone = parse_time(text)
        if kind == "localtime":
            return LocalTime(nanos)
        if zone is not None and offset is None:
            offset = _zone_offset(zone, None, 0, nanos)
        return Time(nanos, offset or 0)
    date_part, time_part = _split_datetime(text)
    day = parse_date(date_part)
    nanos, offset, zone = parse_time(time_part) if time_part else (0, None, None)
    if kind == "localdatetime":
        return LocalDateTime(day * DAY_S + nanos // NANOS, nanos % NANOS)
    return _make_datetime(day, nanos, offset, zone)


def _from_map(kind: str, fields: dict[str, Any]) -> Any:
    keys = {k.lower(): v for k, v in fields.items()}
    if kind == "date":
        return Date(_date_from_map(fields))
    timezone = keys.get("timezone")
    if kind in ("localtime", "time"):
        base = keys.get("time")
        base_nanos = _local_nanos(base) if base is not None else None
        nanos = _time_from_map(fields, base_nanos)
        if kind == "localtime":
            return LocalTime(nanos)
        offset, zone = _zone_of(base) if base is not None else (None, None)
        if timezone is not None:
            new_offset, new_zone = _timezone_arg(timezone)
            if new_zone is not None:
                new_offset = _zone_offset(new_zone, None, 0, nanos)
            if base is not None and offset is not None and isinstance(base, (Time, DateTime)):
                shift = (new_offset or 0) - offset
                nanos = (nanos + shift * NANOS) % DAY_NS
            offset = new_offset
        return Time(nanos, offset or 0)
    # localdatetime / datetime
    if kind == "datetime" and ("epochseconds" in keys or "epochmillis" in keys):
        if "epochmillis" in keys:
            millis = _int(keys["epochmillis"], "epochMillis")
            seconds, rest = divmod(millis, 1000)
            nanos_part = rest * 1_000_000
        else:
            seconds = _int(keys["epochseconds"], "epochSeconds")
            nanos_part = 0
        nanos_part += _int(keys.get("nanosecond", 0), "nanosecond")
        return DateTime(seconds, nanos_part, 0, None)
    base_dt = keys.get("datetime")
    base_date = keys.get("date", base_dt)
    base_time = keys.get("time", base_dt)
    date_fields = {
        k: v
        for k, v in fields.items()
        if k.lower() not in _TIME_KEYS and k.lower() not in ("time", "timezone", "datetime")
    }
    if base_date is not None:
        date_fields["date"] = base_date
    elif base_dt is not None:
        date_fields["date"] = base_dt
    day = _date_from_map(date_fields)
    time_fields = {k: v for k, v in fields.items() if k.lower() in _TIME_KEYS}
    if base_time is not None and not isinstance(base_time, Date):
        nanos = _time_from_map(time_fields, _local_nanos(base_time))
    else:
        nanos = _time_from_map(time_fields, 0 if not time_fields else None) if time_fields else 0
    if kind == "localdatetime":
        return LocalDateTime(day * DAY_S + nanos // NANOS, nanos % NANOS)
    offset, zone = (None, None)
    source = base_time if base_time is not None and not isinstance(base_time, Date) else None
    if source is not None:
        offset, zone = _zone_of(source)
    if timezone is not None:
        new_offset, new_zone = _timezone_arg(timezone)
        if source is not None and offset is not None:
            instant = _make_datetime(day, nanos, offset, zone)
            return _convert_zone(instant, new_offset, new_zone)
        offset, zone = new_offset, new_zone
    return _make_datetime(day, nanos, offset, zone)


def _convert_zone(value: DateTime, offset: int | None, zone: str | None) -> DateTime:
    if zone is not None:
        info = zone_info(zone)
        moment = dt.datetime.fromtimestamp(value.epoch_seconds, tz=dt.UTC)
        delta = moment.astimezone(info).utcoffset()
        offset = int(delta.total_seconds()) if delta else 0
    return DateTime(value.epoch_seconds, value.nanos, offset or 0, zone)


# -- components ----------------------------------------------------------------------------


def component(value: Any, key: str) -> Any:
    lowered = key.lower()
    if isinstance(value, Point):
        return _point_component(value, lowered)
    if isinstance(value, Duration):
        return _duration_component(value, lowered)
    result: dict[str, Any] = {}
    if isinstance(value, (Date, LocalDateTime, DateTime)):
        day = _ymd(_local_day(value))
        iso = day.isocalendar()
        quarter = (day.month - 1) // 3 + 1
        result.update(
            year=day.year,
            quarter=quarter,
            month=day.month,
            week=iso[1],
            weekyear=iso[0],
            dayofquarter=_local_day(value) - _epoch_day(day.year, (quarter - 1) * 3 + 1, 1) + 1,
            day=day.day,
            ordinalday=day.epoch_day - _days_from_civil(day.year, 1, 1) + 1,
            dayofweek=iso[2],
            weekday=iso[2],
        )
    if isinstance(value, (LocalTime, Time, LocalDateTime, DateTime)):
        nanos = _local_nanos(value)
        seconds, sub = divmod(nanos, NANOS)
        result.update(
            hour=seconds // 3600,
            minute=(seconds // 60) % 60,
            second=seconds % 60,
            millisecond=sub // 1_000_000,
            microsecond=sub // 1000,
            nanosecond=sub,
        )
    if isinstance(value, (Time, DateTime)):
        offset = value.offset_seconds
        result.update(
            timezone=(
                value.zone_id
                if isinstance(value, DateTime) and value.zone_id
                else _format_offset(offset)
            ),
            offset=_format_offset(offset),
            offsetminutes=offset // 60,
            offsetseconds=offset,
        )
    if isinstance(value, DateTime):
        result.update(
            epochseconds=value.epoch_seconds,
            epochmillis=value.epoch_seconds * 1000 + value.nanos // 1_000_000,
        )
    if lowered not in result:
        return None
    return result[lowered]


def _duration_component(value: Duration, key: str) -> Any:
    total_seconds = value.seconds
    nanos = value.nanos
    table = {
        "years": int(value.months / 12),
        "quarters": int(value.months / 3),
        "months": value.months,
        "weeks": int(value.days / 7),
        "days": value.days,
        "hours": int(total_seconds / 3600) if total_seconds >= 0 else -((-total_seconds) // 3600),
        "minutes": int(total_seconds / 60) if total_seconds >= 0 else -((-total_seconds) // 60),
        "seconds": total_seconds,
        "milliseconds": total_seconds * 1000 + nanos // 1_000_000,
        "microseconds": total_seconds * 1_000_000 + nanos // 1000,
        "nanoseconds": total_seconds * NANOS + nanos,
        "quartersofyear": int(value.months / 3) - int(value.months / 12) * 4,
        "monthsofquarter": value.months - int(value.months / 3) * 3,
        "monthsofyear": value.months - int(value.months / 12) * 12,
        "daysofweek": value.days - int(value.days / 7) * 7,
        "minutesofhour": (total_seconds // 60) % 60 if total_seconds >= 0 else None,
        "secondsofminute": total_seconds % 60 if total_seconds >= 0 else None,
        "millisecondsofsecond": nanos // 1_000_000,
        "microsecondsofsecond": nanos // 1000,
        "nanosecondsofsecond": nanos,
    }
    if total_seconds < 0:
        table["hours"] = math.floor(total_seconds / 3600)
        table["minutes"] = math.floor(total_seconds / 60)
        table["minutesofhour"] = (
            math.floor(total_seconds / 60) - math.floor(total_seconds / 3600) * 60
        )
        table["secondsofminute"] = total_seconds - math.floor(total_seconds / 60) * 60
    return table.get(key)


def _point_component(value: Point, key: str) -> Any:
    if key in ("x", "longitude"):
        return value.x
    if key in ("y", "latitude"):
        return value.y
    if key in ("z", "height"):
        return value.z
    if key == "srid":
        return value.srid
    if key == "crs":
        return {7203: "cartesian", 9157: "cartesian-3d", 4326: "wgs-84", 4979: "wgs-84-3d"}[
            value.srid
        ]
    return None


# -- arithmetic ----------------------------------------------------------------------------


def _add_months(epoch_day: int, months: int) -> int:
    day = _ymd(epoch_day)
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    last = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return _epoch_day(year, month, min(day.day, last))


def _plus(value: Any, duration: Duration, sign: int) -> Any:
    months, days = duration.months * sign, duration.days * sign
    nanos = _duration_total_nanos(duration) * sign
    if isinstance(value, Date):
        day = _add_months(value.epoch_day, months) + days
        result_day = day + _toward_zero(nanos, DAY_NS)
        _ymd(result_day)  # in range, or a clear error
        return Date(result_day)
    if isinstance(value, LocalTime):
        return LocalTime((value.nanos_of_day + nanos) % DAY_NS)
    if isinstance(value, Time):
        return Time((value.nanos_of_day + nanos) % DAY_NS, value.offset_seconds)
    if isinstance(value, LocalDateTime):
        day = _add_months(value.epoch_seconds // DAY_S, months) + days
        total = day * DAY_NS + _local_nanos(value) + nanos
        seconds, rest = divmod(total, NANOS)
        _ymd(seconds // DAY_S)  # in range, or a clear error
        return LocalDateTime(seconds, rest)
    if isinstance(value, DateTime):
        day = _add_months(_local_day(value), months) + days
        local_nanos = _local_nanos(value)
        if value.zone_id:
            moved = _make_datetime(day, local_nanos, None, value.zone_id)
        else:
            moved = _make_datetime(day, local_nanos, value.offset_seconds, None)
        total = moved.epoch_seconds * NANOS + moved.nanos + nanos
        seconds, rest = divmod(total, NANOS)
        result = DateTime(seconds, rest, moved.offset_seconds, value.zone_id)
        if value.zone_id:
            result = _convert_zone(result, None, value.zone_id)
        return result
    return NotImplemented


def add(left: Any, right: Any) -> Any:
    if isinstance(left, Duration) and isinstance(right, Duration):
        return _make_duration(
            left.months + right.months,
            left.days + right.days,
            left.seconds + right.seconds,
            left.nanos + right.nanos,
        )
    if isinstance(right, Duration) and not isinstance(left, Duration):
        return _plus(left, right, 1)
    if isinstance(left, Duration) and not isinstance(right, Duration):
        return _plus(right, left, 1)
    return NotImplemented


def subtract(left: Any, right: Any) -> Any:
    if isinstance(left, Duration) and isinstance(right, Duration):
        return _make_duration(
            left.months - right.months,
            left.days - right.days,
            left.seconds - right.seconds,
            left.nanos - right.nanos,
        )
    if isinstance(right, Duration):
        return _plus(left, right, -1)
    return NotImplemented


def _scale(duration: Duration, factor: float) -> Duration:
    if isinstance(factor, int):
        return _make_duration(
            duration.months * factor,
            duration.days * factor,
            duration.seconds * factor,
            duration.nanos * factor,
        )
    return _make_duration(
        duration.months * factor,
        duration.days * factor,
        duration.seconds * factor,
        duration.nanos * factor,
    )


def multiply(left: Any, right: Any) -> Any:
    from cypher.values import is_number

    if isinstance(left, Duration) and is_number(right):
        return _scale(left, right)
    if isinstance(right, Duration) and is_number(left):
        return _scale(right, left)
    return NotImplemented


def divide(left: Any, right: Any) -> Any:
    from cypher.values import is_number

    if isinstance(left, Duration) and is_number(right):
        if right == 0:
            raise argument_error("division of a duration by zero", "DivisionByZero")
        return _scale(left, Fraction(1) / Fraction(right))
    return NotImplemented


def negate(value: Any) -> Any:
    if isinstance(value, Duration):
        return _make_duration(-value.months, -value.days, -value.seconds, -value.nanos)
    return NotImplemented


# -- duration.between ----------------------------------------------------------------------


def _as_instant_parts(value: Any) -> tuple[int | None, int | None, int | None]:
    """(local day or None, local nanos or None, offset or None)."""
    day = _local_day(value) if isinstance(value, (Date, LocalDateTime, DateTime)) else None
    nanos = _local_nanos(value) if not isinstance(value, Date) else None
    offset = value.offset_seconds if isinstance(value, (Time, DateTime)) else None
    return day, nanos, offset


def _in_named_zone(value: Any, other: Any) -> Any:
    """A local value measured against a datetime in a named zone is placed in that zone
    (on the other's date when it has none), so a daylight-saving change between them counts."""
    if not (isinstance(other, DateTime) and other.zone_id):
        return value
    if isinstance(value, (Date, LocalDateTime)):
        nanos = 0 if isinstance(value, Date) else _local_nanos(value)
        return _make_datetime(_local_day(value), nanos, None, other.zone_id)
    if isinstance(value, LocalTime):
        return _make_datetime(_local_day(other), value.nanos_of_day, None, other.zone_id)
    return value


def _between(ctx: Any, left: Any, right: Any, unit: str = "all") -> Any:
    if left is None or right is None:
        return None
    for value in (left, right):
        if not isinstance(value, (Date, LocalTime, Time, LocalDateTime, DateTime)):
            raise type_error("duration.between expects temporal values", "InvalidArgumentValue")
    left, right = _in_named_zone(left, right), _in_named_zone(right, left)
    day1, nanos1, off1 = _as_instant_parts(left)
    day2, nanos2, off2 = _as_instant_parts(right)
    has_time = nanos1 is not None and nanos2 is not None
    if has_time and off1 is not None and off2 is not None:
        # compare in UTC when both carry an offset
        if (
            isinstance(left, DateTime)
            and isinstance(right, DateTime)
            and left.zone_id
            and right.zone_id
        ):
            pass
        else:
            nanos2 = nanos2 - (off2 - off1) * NANOS
    if day1 is None or day2 is None:
        day1 = day2 = 0
    n1 = nanos1 if nanos1 is not None else 0
    n2 = nanos2 if nanos2 is not None else 0
    if (
        isinstance(left, DateTime)
        and isinstance(right, DateTime)
        and (left.zone_id or right.zone_id)
    ):
        total_left = left.epoch_seconds * NANOS + left.nanos
        total_right = right.epoch_seconds * NANOS + right.nanos
        if unit == "seconds":
            return _make_duration(0, 0, 0, total_right - total_left)
    if unit == "seconds":
        total = (day2 - day1) * DAY_NS + (n2 - n1)
        return _make_duration(0, 0, 0, total)
    if unit == "days":
        total = (day2 - day1) * DAY_NS + (n2 - n1)
        days = int(total / DAY_NS)
        if not has_time:
            return Duration(0, days, 0, 0)
        return Duration(0, days, 0, 0)
    # months (and the full split)
    start = _ymd(day1)
    end = _ymd(day2)
    months = (end.year - start.year) * 12 + (end.month - start.month)
    rest_days = day2 - _add_months(day1, months) if months else day2 - day1
    rest_nanos = n2 - n1
    # borrow so that the remainder has the sign of the months
    if months > 0 and (rest_days < 0 or (rest_days == 0 and rest_nanos < 0)):
        months -= 1
        rest_days = day2 - _add_months(day1, months)
    elif months < 0 and (rest_days > 0 or (rest_days == 0 and rest_nanos > 0)):
        months += 1
        rest_days = day2 - _add_months(day1, months)
    if unit == "months":
        return Duration(months, 0, 0, 0)
    total = rest_days * DAY_NS + rest_nanos
    days = int(total / DAY_NS)
    remainder = total - days * DAY_NS
    if (
        isinstance(left, DateTime)
        and isinstance(right, DateTime)
        and (left.zone_id or right.zone_id)
    ):
        moved = _plus(left, Duration(months, days, 0, 0), 1)
        remainder = (right.epoch_seconds * NANOS + right.nanos) - (
            moved.epoch_seconds * NANOS + moved.nanos
        )
    seconds, nanos = divmod(remainder, NANOS)
    return Duration(months, days, seconds, nanos)


# -- truncation ----------------------------------------------------------------------------

_DATE_UNITS = (
    "millennium",
    "century",
    "decade",
    "year",
    "weekyear",
    "quarter",
    "month",
    "week",
    "day",
)
_TIME_UNITS = ("hour", "minute", "second", "millisecond", "microsecond")


def _truncate_day(epoch_day: int, unit: str) -> int:
    day = _ymd(epoch_day)
    if unit == "millennium":
        return _epoch_day(day.year // 1000 * 1000, 1, 1)
    if unit == "century":
        return _epoch_day(day.year // 100 * 100, 1, 1)
    if unit == "decade":
        return _epoch_day(day.year // 10 * 10, 1, 1)
    if unit == "year":
        return _epoch_day(day.year, 1, 1)
    if unit == "weekyear":
        return _week_date(day.isocalendar()[0], 1, 1)
    if unit == "quarter":
        return _epoch_day(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    if unit == "month":
        return _epoch_day(day.year, day.month, 1)
    if unit == "week":
        return epoch_day - (day.isoweekday() - 1)
    return epoch_day


def _truncate_nanos(nanos: int, unit: str) -> int:
    size = {
        "day": DAY_NS,
        "hour": 3600 * NANOS,
        "minute": 60 * NANOS,
        "second": NANOS,
        "millisecond": 1_000_000,
        "microsecond": 1000,
    }[unit]
    return nanos // size * size


def _truncate(kind: str, ctx: Any, unit: Any, value: Any, fields: Any = None) -> Any:
    if value is None:
        return None
    unit = str(unit).lower()
    fields = dict(fields or {})
    if kind == "date" or unit in _DATE_UNITS:
        if isinstance(value, (LocalTime, Time)):
            raise _bad(f"cannot truncate a time to {unit}")
        day = _truncate_day(_local_day(value), unit)
        nanos = 0
    else:
        day = _local_day(value) if not isinstance(value, (LocalTime, Time)) else 0
        nanos = _truncate_nanos(_local_nanos(value), unit)
    if unit == "weekyear" and "dayofweek" in {k.lower() for k in fields}:
        pass
    if kind == "date":
        base = Date(day)
        return _from_map("date", {"date": base, **fields}) if fields else base
    if kind in ("localtime", "time"):
        offset = value.offset_seconds if isinstance(value, (Time, DateTime)) else 0
        zone_key = next((k for k in fields if k.lower() == "timezone"), None)
        if zone_key is not None and kind == "time":
            new_offset, new_zone = _timezone_arg(fields.pop(zone_key))
            offset = new_offset if new_zone is None else _zone_offset(new_zone, None, day, nanos)
        if kind == "localtime":
            base_lt: Any = LocalTime(nanos)
        else:
            base_lt = Time(nanos, offset)
        return _from_map(kind, {"time": base_lt, **fields}) if fields else base_lt
    if kind == "localdatetime":
        base_ldt = LocalDateTime(day * DAY_S + nanos // NANOS, nanos % NANOS)
        return _from_map(kind, {"datetime": base_ldt, **fields}) if fields else base_ldt
    offset, zone = _zone_of(value)
    if "timezone" in {k.lower() for k in fields}:
        offset, zone = _timezone_arg(fields.pop(next(k for k in fields if k.lower() == "timezone")))
    base_dt = _make_datetime(day, nanos, offset, zone)
    if fields:
        time_fields = {k: v for k, v in fields.items() if k.lower() in _TIME_KEYS}
        date_fields = {k: v for k, v in fields.items() if k.lower() not in _TIME_KEYS}
        new_day = _date_from_map({"date": Date(day), **date_fields}) if date_fields else day
        new_nanos = _time_from_map(time_fields, nanos) if time_fields else nanos
        return _make_datetime(new_day, new_nanos, offset, zone)
    return base_dt


# -- spatial -------------------------------------------------------------------------------


def _point(ctx: Any, fields: Any) -> Any:
    if fields is None:
        return None
    if not isinstance(fields, dict):
        raise type_error("point() expects a map", "InvalidArgumentValue")
    keys = {k.lower(): v for k, v in fields.items()}
    if any(v is None for v in keys.values()):
        return None
    for name in ("x", "y", "z", "longitude", "latitude", "height"):
        if name in keys and (
            isinstance(keys[name], bool) or not isinstance(keys[name], (int, float))
        ):
            raise type_error(f"point() {name} must be a number", "InvalidArgumentValue")
    crs = str(keys.get("crs", "")).lower()
    if "longitude" in keys or "latitude" in keys or crs.startswith("wgs"):
        x = float(keys.get("longitude", keys.get("x", 0.0)))
        y = float(keys.get("latitude", keys.get("y", 0.0)))
        z = keys.get("height", keys.get("z"))
        return Point(4979 if z is not None else 4326, x, y, float(z) if z is not None else None)
    x, y = float(keys["x"]), float(keys["y"])
    z = keys.get("z")
    return Point(9157 if z is not None else 7203, x, y, float(z) if z is not None else None)


def _distance(ctx: Any, a: Any, b: Any) -> Any:
    if a is None or b is None or not isinstance(a, Point) or not isinstance(b, Point):
        return None
    if a.srid != b.srid:
        return None
    if a.srid in (4326, 4979):
        lat1, lat2 = math.radians(a.y), math.radians(b.y)
        dlat = lat2 - lat1
        dlon = math.radians(b.x - a.x)
        h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
        return 2 * 6_378_140.0 * math.asin(math.sqrt(h))
    dz = (a.z or 0.0) - (b.z or 0.0)
    return math.sqrt((a.x - b.x) ** 2 + (a.y - b.y) ** 2 + dz * dz)


def _duration_fn(ctx: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, dict):
        return duration_from_map(value)
    raise type_error("duration() expects a string or map", "InvalidArgumentValue")


def _from_epoch(ctx: Any, seconds: Any, nanos: Any = 0) -> Any:
    if seconds is None or nanos is None:
        return None
    total = _int(seconds, "seconds") * NANOS + _int(nanos, "nanoseconds")
    s, n = divmod(total, NANOS)
    return DateTime(s, n, 0, None)


def _from_epoch_millis(ctx: Any, millis: Any) -> Any:
    if millis is None:
        return None
    s, ms = divmod(_int(millis, "millis"), 1000)
    return DateTime(s, ms * 1_000_000, 0, None)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "point": _point,
    "distance": _distance,
    "point.distance": _distance,
    "duration": _duration_fn,
    "duration.between": lambda ctx, a, b: _between(ctx, a, b, "all"),
    "duration.inmonths": lambda ctx, a, b: _between(ctx, a, b, "months"),
    "duration.indays": lambda ctx, a, b: _between(ctx, a, b, "days"),
    "duration.inseconds": lambda ctx, a, b: _between(ctx, a, b, "seconds"),
    "datetime.fromepoch": _from_epoch,
    "datetime.fromepochmillis": _from_epoch_millis,
}
for _kind in ("date", "localtime", "time", "localdatetime", "datetime"):
    FUNCTIONS[_kind] = lambda ctx, *args, _k=_kind: _construct(_k, ctx, *args)
    FUNCTIONS[f"{_kind}.truncate"] = lambda ctx, *args, _k=_kind: _truncate(_k, ctx, *args)
    for _clock in ("transaction", "statement", "realtime"):
        FUNCTIONS[f"{_kind}.{_clock}"] = lambda ctx, *zone, _k=_kind: (
            None if zone and zone[0] is None else _now(_k, ctx, zone[0] if zone else None)
        )
