"""Time zones: from the naive device clock to UTC and local wall-clock time, and local calendar days.

Every reader returns the device's clock as it is: naive local time, no zone. That is the default everywhere in this
package. Given an IANA zone name (``Europe/London``), these functions add UTC and local time and cut data into
*local* calendar days, which last 23 or 25 hours at daylight-saving changes (flagged, never silently 24).

How the naive clock maps to UTC is a property of the device, chosen with ``clock``:

``"fixed"`` (default)
    The clock runs at one UTC offset for the whole recording: the offset the zone had when the clock was set, i.e. at
    the first sample read as local time (or ``clock_offset_s``, e.g. the offset the file header records). This is how
    Axivity, GENEActiv and ActiGraph devices behave: they do not change their clock at daylight-saving changes.
    UTC is continuous; local time jumps by the DST change.
``"wall"``
    Every naive time is local wall-clock time in the zone, as written by software that follows daylight saving
    (e.g. some CSV exports). Wall times that occur twice (the repeated hour in autumn) are *ambiguous*, wall times
    skipped in spring are *non-existent*; both are resolved by an explicit policy and counted.

Offsets are evaluated on a grid of whole minutes, exact for every zone whose transitions fall on whole minutes (all
zones since 1972).
"""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo

import numpy as np
import pandas as pd

from .errors import CapturePipelineError

NS_PER_MIN = 60_000_000_000
NS_PER_S = 1_000_000_000
_PAD_MIN = 2 * 1440  # grid padding: more than any UTC offset (max ±14 h) plus a day
#: Longer spans are refused as corrupt timestamps (the minute grid would need gigabytes).
MAX_SPAN_DAYS = 20 * 366

CLOCKS = ("fixed", "wall")
AMBIGUOUS = ("earlier", "later", "infer", "raise")
NONEXISTENT = ("before", "after", "raise")


class TimeZoneError(CapturePipelineError, ValueError):
    """An unknown zone name, or a local time the chosen policy refuses ('raise')."""


def get_zone(tz):
    """A tzinfo for an IANA name ('Europe/London'), 'UTC', or a fixed offset ('+02:00', 'UTC-05:30').

    Raises
    ------
    TimeZoneError
        The name is neither a zone in the tz database nor a fixed offset.
    """
    if isinstance(tz, _dt.tzinfo):
        return tz
    name = str(tz).strip()
    m = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", name, flags=re.IGNORECASE)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        delta = _dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return _dt.timezone(sign * delta)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeZoneError(
            f"unknown time zone {name!r}: give an IANA name such as 'Europe/London' or an offset such as '+01:00'"
        ) from exc


def _offset_table(m_lo: int, m_hi: int, tz) -> np.ndarray:
    """UTC offset (s, int64) in force at each UTC minute ``m_lo..m_hi`` (minutes since 1970)."""
    utc = pd.DatetimeIndex((np.arange(m_lo, m_hi + 1, dtype=np.int64) * NS_PER_MIN).view("datetime64[ns]"), tz="UTC")
    local = utc.tz_convert(tz).tz_localize(None)
    return (local.asi8 - utc.asi8) // NS_PER_S


class _Grid:
    """Offsets on a minute grid covering a range of instants, padded so that any ±14 h shift stays inside."""

    def __init__(self, lo_ns: int, hi_ns: int, tz):
        self.m0 = int(lo_ns // NS_PER_MIN) - _PAD_MIN
        self.table = _offset_table(self.m0, int(hi_ns // NS_PER_MIN) + _PAD_MIN, tz)

    def at_utc(self, utc_ns) -> np.ndarray:
        return self.table[np.asarray(utc_ns) // NS_PER_MIN - self.m0]


def _wall_candidates(grid: _Grid, wall_min: np.ndarray):
    """For naive wall-clock minutes: the two candidate offsets and their validity (see module docstring).

    Returns ``(earlier_off, later_off, ambiguous, nonexistent)`` where ``earlier_off`` gives the earlier UTC instant
    (larger offset) and for non-existent times ``earlier_off``/``later_off`` are the offsets after/before the jump.
    """
    w = wall_min * NS_PER_MIN
    o_max, o_min = int(grid.table.max()), int(grid.table.min())
    p = grid.at_utc(w - o_max * NS_PER_S)  # offset at the earliest possible UTC instant
    q = grid.at_utc(w - o_min * NS_PER_S)  # ... and at the latest
    p_ok = grid.at_utc(w - p * NS_PER_S) == p
    q_ok = grid.at_utc(w - q * NS_PER_S) == q
    ambiguous = p_ok & q_ok & (p != q)
    nonexistent = ~p_ok & ~q_ok
    # unique: whichever is valid; ambiguous: the larger offset is the earlier instant
    earlier = np.where(p_ok & q_ok, np.maximum(p, q), np.where(p_ok, p, q))
    later = np.where(p_ok & q_ok, np.minimum(p, q), np.where(p_ok, p, q))
    # non-existent (clocks jumped forward from p to q): 'before' keeps p, the offset before the change
    earlier = np.where(nonexistent, q, earlier)
    later = np.where(nonexistent, p, later)
    return earlier, later, ambiguous, nonexistent


def localise(time_ns, tz, *, clock: str = "fixed", clock_offset_s=None, ambiguous: str = "earlier",
             nonexistent: str = "before", qc: dict | None = None):  # fmt: skip
    """UTC and the local UTC offset of each naive device time.

    Parameters
    ----------
    time_ns : int64 array
        Naive device-clock times in ns since 1970 (``Recording.time``), or anything `numpy.asarray` turns into
        ``datetime64[ns]``/int64.
    tz : str or tzinfo
        IANA zone name ('Europe/London'), 'UTC' or a fixed offset ('+01:00').
    clock : {'fixed', 'wall'}
        How the device clock relates to the zone (module docstring). 'fixed' for device files.
    clock_offset_s : int, optional
        With ``clock='fixed'``: the clock's UTC offset in seconds (e.g. ``Recording.meta['utc_offset_s']``, which the
        GENEActiv and ActiGraph readers take from the file). Default: the zone's offset at the first sample.
    ambiguous : {'earlier', 'later', 'infer', 'raise'}
        With ``clock='wall'``, a wall time that occurs twice: the first occurrence (earlier UTC), the second, 'infer'
        (the second for samples after the clock stepped back, i.e. below the running maximum, else the first), or
        raise `TimeZoneError`.
    nonexistent : {'before', 'after', 'raise'}
        With ``clock='wall'``, a wall time in a spring-forward gap: use the UTC offset in force before the change (as if
        the clock had not been put forward yet; the instant is later), after it, or raise.
    qc : dict, optional
        When given, filled with ``timezone``, ``clock``, ``clock_offset_s`` (fixed), ``ambiguous_samples``,
        ``nonexistent_samples`` (wall; 0 for fixed), ``ambiguous_policy``, ``nonexistent_policy`` and
        ``dst_transitions``: the UTC offset changes within the recording (``utc``, ``local_before``,
        ``local_after``, ``offset_before_s``, ``offset_after_s``).

    Returns
    -------
    utc_ns : int64 array
        UTC instants in ns since 1970.
    local_offset_s : int32 array
        UTC offset of the zone at each instant (local wall time = ``utc_ns + local_offset_s * 1e9``).
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, not {clock!r}")
    if ambiguous not in AMBIGUOUS:
        raise ValueError(f"ambiguous must be one of {AMBIGUOUS}, not {ambiguous!r}")
    if nonexistent not in NONEXISTENT:
        raise ValueError(f"nonexistent must be one of {NONEXISTENT}, not {nonexistent!r}")
    zone = get_zone(tz)
    t = np.asarray(time_ns)
    t = t.view(np.int64) if t.dtype.kind == "M" else t.astype(np.int64, copy=False)
    info = {"timezone": str(tz), "clock": clock, "ambiguous_policy": ambiguous, "nonexistent_policy": nonexistent,
            "clock_offset_s": None, "ambiguous_samples": 0, "nonexistent_samples": 0,
            "dst_transitions": []}  # fmt: skip
    if len(t) == 0:
        if qc is not None:
            qc.update(info)
        return np.empty(0, np.int64), np.empty(0, np.int32)
    lo, hi = int(t.min()), int(t.max())
    if hi - lo > MAX_SPAN_DAYS * 86400 * NS_PER_S:
        raise TimeZoneError(f"the times span {(hi - lo) / 86400e9:.0f} days (from {np.datetime64(lo, 'ns')} to "
                            f"{np.datetime64(hi, 'ns')}); check the input's timestamps")  # fmt: skip
    grid = _Grid(lo, hi, zone)

    if clock == "fixed":
        if clock_offset_s is None:
            e, lat, amb, non = _wall_candidates(grid, np.array([t[0] // NS_PER_MIN]))
            # the clock was set before the first sample; a first sample in an ambiguous hour is taken as the first one
            clock_offset_s = int(e[0])
        info["clock_offset_s"] = int(clock_offset_s)
        utc = t - np.int64(clock_offset_s) * NS_PER_S
    else:
        m0 = lo // NS_PER_MIN
        wall_min = np.arange(m0, hi // NS_PER_MIN + 1, dtype=np.int64)
        e, lat, amb, non = _wall_candidates(grid, wall_min)
        idx = t // NS_PER_MIN - m0
        amb_s, non_s = amb[idx], non[idx]
        info["ambiguous_samples"] = int(amb_s.sum())
        info["nonexistent_samples"] = int(non_s.sum())
        if ambiguous == "raise" and info["ambiguous_samples"]:
            first = t[np.argmax(amb_s)].view("datetime64[ns]")
            raise TimeZoneError(f"{info['ambiguous_samples']} samples have ambiguous local times in {tz} "
                                f"(first {first})")  # fmt: skip
        if nonexistent == "raise" and info["nonexistent_samples"]:
            first = t[np.argmax(non_s)].view("datetime64[ns]")
            raise TimeZoneError(f"{info['nonexistent_samples']} samples have non-existent local times in {tz} "
                                f"(first {first})")  # fmt: skip
        off = e[idx]  # earlier for ambiguous, 'after' for non-existent
        if ambiguous == "later":
            off = np.where(amb_s, lat[idx], off)
        elif ambiguous == "infer":
            # a clock that follows DST steps back by the change: an ambiguous sample is the repeat when the clock
            # stepped back since the last unambiguous sample
            i = np.arange(len(t))
            back = np.zeros(len(t), bool)
            back[1:] = t[1:] < t[:-1]
            last_back = np.maximum.accumulate(np.where(back, i, -1))
            last_plain = np.maximum.accumulate(np.where(amb_s, -1, i))
            repeat = last_back > last_plain
            off = np.where(amb_s & repeat, lat[idx], off)
        if nonexistent == "before":
            off = np.where(non_s, lat[idx], off)
        utc = t - off * NS_PER_S

    local_off = grid.at_utc(utc).astype(np.int32)
    if qc is not None:
        info["dst_transitions"] = _transitions(grid, int(utc.min()), int(utc.max()))
        qc.update(info)
    return utc, local_off


def localise_recording(recording, tz, *, clock: str = "fixed", use_file_offset: bool = True, **options):
    """`localise` for a `Recording`, taking the clock's UTC offset from the file when it records one.

    GENEActiv and ActiGraph files store the UTC offset the device clock was set in (``meta['utc_offset_s']``); with
    ``clock='fixed'`` and ``use_file_offset`` that offset maps the clock to UTC (the zone then only gives local
    time), otherwise the zone's offset at the first sample is used.

    Returns
    -------
    utc_ns : int64 array
    local_offset_s : int32 array
    qc : dict
        As filled by `localise`, plus ``clock_offset_source`` ('file', 'zone' or None for wall clocks).
    """
    qc: dict = {}
    file_offset = recording.meta.get("utc_offset_s") if use_file_offset and clock == "fixed" else None
    utc, off = localise(recording.time, tz, clock=clock, clock_offset_s=file_offset, qc=qc, **options)
    qc["clock_offset_source"] = None if clock != "fixed" else ("file" if file_offset is not None else "zone")
    return utc, off, qc


def _transitions(grid: _Grid, lo_ns: int, hi_ns: int) -> list:
    a = lo_ns // NS_PER_MIN - grid.m0
    b = hi_ns // NS_PER_MIN - grid.m0
    seg = grid.table[a : b + 1]
    out = []
    for i in np.flatnonzero(np.diff(seg) != 0) + 1:
        m = int((grid.m0 + a + i) * NS_PER_MIN)
        before, after = int(seg[i - 1]), int(seg[i])
        out.append({
            "utc": str(np.datetime64(m, "ns")),
            "local_before": str(np.datetime64(m + before * NS_PER_S, "ns")),
            "local_after": str(np.datetime64(m + after * NS_PER_S, "ns")),
            "offset_before_s": before,
            "offset_after_s": after,
        })  # fmt: skip
    return out


def local_wall_ns(utc_ns, local_offset_s) -> np.ndarray:
    """Naive local wall-clock ns (for code that works on naive times, e.g. hour-of-day and weekday summaries)."""
    return np.asarray(utc_ns, np.int64) + np.asarray(local_offset_s, np.int64) * NS_PER_S


def add_time_columns(df: pd.DataFrame, tz, time_col: str = "time", qc: dict | None = None, **localise_options):
    """A copy of ``df`` with ``time_utc`` (tz-aware UTC) and ``time_local`` (tz-aware in ``tz``) columns.

    Parameters
    ----------
    df : pandas.DataFrame
        With naive device times in column ``time_col`` (or, if there is no such column, in the index).
    tz : str or tzinfo
        Zone (see `localise`).
    time_col : str
        Name of the naive time column.
    qc : dict, optional
        Filled as by `localise`; also stored in ``result.attrs['timezone']``.
    **localise_options
        ``clock``, ``clock_offset_s``, ``ambiguous``, ``nonexistent`` (see `localise`).

    Returns
    -------
    pandas.DataFrame
        The naive column is kept unchanged, so outputs without ``--timezone`` stay as they were.
    """
    naive = df[time_col] if time_col in df.columns else df.index.to_series()
    t = pd.DatetimeIndex(naive).as_unit("ns")
    if t.tz is not None:
        raise TimeZoneError(f"column {time_col!r} is already zone-aware; expected the naive device clock")
    info: dict = {}
    utc, off = localise(t.asi8, tz, qc=info, **localise_options)
    out = df.copy()
    out["time_utc"] = pd.DatetimeIndex(utc.view("datetime64[ns]"), tz="UTC")
    out["time_local"] = out["time_utc"].dt.tz_convert(get_zone(tz))
    out.attrs["timezone"] = info
    if qc is not None:
        qc.update(info)
    return out


def local_date(utc_ns, local_offset_s) -> np.ndarray:
    """Local calendar date (``datetime64[D]``) of each instant."""
    return (local_wall_ns(utc_ns, local_offset_s) // (86400 * NS_PER_S)).astype("datetime64[D]")


def local_days(utc_ns, tz, interval_s: float | None = None, values: dict | None = None) -> pd.DataFrame:
    """One row per local calendar day touched by ``utc_ns``, with its true length.

    Parameters
    ----------
    utc_ns : int64 array
        UTC instants (from `localise`): samples, or window starts.
    tz : str or tzinfo
        Zone.
    interval_s : float, optional
        Seconds each instant stands for (the sample period, or the window length); gives ``covered_h``.
    values : dict of str to array, optional
        Per-instant values (e.g. ``{"enmo": ..., "wear": ...}``) averaged per local day into ``<name>_mean``
        (NaN ignored; a boolean's mean is the fraction of the day's instants).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``date`` (local calendar date), with ``start_utc`` and ``end_utc`` (first instant of the day and of
        the next, tz-aware UTC), ``length_h`` (23, 24, 25, or e.g. 23.5 for half-hour DST zones), ``dst_change``
        (True when the day is not 24 h long), ``offset_start_s``/``offset_end_s``, ``n`` (instants in the day) and,
        with ``interval_s``, ``covered_h`` (``n * interval_s`` in hours) and ``complete`` (``covered_h`` reaches
        ``length_h`` within one interval); with ``values``, one ``<name>_mean`` column each.
    """
    zone = get_zone(tz)
    u = np.asarray(utc_ns, np.int64)
    cols = ["start_utc", "end_utc", "length_h", "dst_change", "offset_start_s", "offset_end_s", "n"]
    if len(u) == 0:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="date"))
    grid = _Grid(int(u.min()), int(u.max()), zone)
    local_min = np.arange(len(grid.table), dtype=np.int64) + grid.m0 + grid.table // 60
    day_of_min = local_min // 1440  # local date (days since 1970) of each UTC minute of the grid
    days_u = local_date(u, grid.at_utc(u))
    d_lo, d_hi = days_u.min().astype(np.int64), days_u.max().astype(np.int64)
    dates = np.arange(d_lo, d_hi + 1, dtype=np.int64)
    # first grid minute of each day and of the day after (day_of_min is non-decreasing: offsets change < 1 day)
    first = np.searchsorted(day_of_min, dates, side="left")
    nxt = np.searchsorted(day_of_min, dates + 1, side="left")
    start = (grid.m0 + first) * NS_PER_MIN
    end = (grid.m0 + nxt) * NS_PER_MIN
    length_h = (end - start) / 3.6e12
    counts = np.bincount((days_u.astype(np.int64) - d_lo), minlength=len(dates))
    out = pd.DataFrame(
        {
            "start_utc": pd.DatetimeIndex(start.view("datetime64[ns]"), tz="UTC"),
            "end_utc": pd.DatetimeIndex(end.view("datetime64[ns]"), tz="UTC"),
            "length_h": length_h,
            "dst_change": ~np.isclose(length_h, 24.0),
            "offset_start_s": grid.table[first].astype(np.int32),
            "offset_end_s": grid.table[nxt - 1].astype(np.int32),
            "n": counts,
        },
        index=pd.Index(dates.astype("datetime64[D]"), name="date"),
    )
    if interval_s is not None:
        out["covered_h"] = counts * float(interval_s) / 3600.0
        out["complete"] = out["covered_h"] >= out["length_h"] - float(interval_s) / 3600.0 * 1.0001
    day_idx = days_u.astype(np.int64) - d_lo
    for name, v in (values or {}).items():
        v = np.asarray(v, np.float64)
        if v.shape != u.shape:
            raise ValueError(f"values[{name!r}] has {v.shape[0] if v.ndim else 0} entries for {len(u)} instants")
        ok = np.isfinite(v)
        sums = np.bincount(day_idx[ok], weights=v[ok], minlength=len(dates))
        n_ok = np.bincount(day_idx[ok], minlength=len(dates))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{name}_mean"] = np.where(n_ok > 0, sums / np.maximum(n_ok, 1), np.nan)
    return out
