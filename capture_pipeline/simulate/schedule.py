"""The daily bout schedule: which activity a simulated participant does when.

A day is night sleep, a morning routine (with a shower: the device comes off), a commute by the person's usual
mode, desk work broken by short walks and standing, lunch, the commute back and an evening of cooking, eating,
television and reading; some people go for a run. Days off replace work with chores, outings and leisure.
Bout lengths are drawn in minutes, so the schedule is realistic at the scale of CAPTURE-24's camera labels
(minutes to hours), and a few awake bouts are left unannotated, as camera gaps are in the real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activities import NAMES, activity, choose_annotation
from .person import Person

#: Probability that an awake, worn bout has no annotation (a camera gap in CAPTURE-24).
P_UNANNOTATED = 0.05


@dataclass(frozen=True)
class Bout:
    """One bout: ``activity`` from ``start_s`` to ``end_s`` seconds after the recording start."""

    start_s: float
    end_s: float
    activity: str
    annotation: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class _Day:
    """Accumulates (activity, context, seconds) items of one awake period, never past its end."""

    def __init__(self, rng, length_s: float):
        self.rng = rng
        self.length_s = length_s
        self.items: list[tuple[str, str, float]] = []
        self.t = 0.0

    @property
    def full(self) -> bool:
        return self.t >= self.length_s

    def add(self, name: str, context: str, lo_min: float, hi_min: float | None = None):
        if self.full:
            return
        minutes = lo_min if hi_min is None else self.rng.uniform(lo_min, hi_min)
        dur = min(minutes * 60.0, self.length_s - self.t)
        if dur > 0:
            self.items.append((name, context, dur))
            self.t += dur

    def until(self, clock_s: float, filler):
        """Call ``filler()`` (which adds bouts) until the day clock reaches ``clock_s``."""
        while not self.full and self.t < clock_s:
            filler()


def _commute(day: _Day, mode: str, home: bool = False):
    # walking to work and walking home carry different CAPTURE-24 annotations (17270 is "to work ... (not from)")
    walk = "commute_home" if home else "commute"
    if mode == "walk":
        day.add("walking", walk, 12, 30)
    elif mode == "drive":
        day.add("walking", walk, 1, 4)
        day.add("driving", "commute", 15, 40)
        day.add("walking", walk, 2, 5)
    elif mode == "bus_train":
        day.add("walking", walk, 4, 10)
        day.add("standing", "commute", 2, 8)
        day.add("bus_train", "commute", 15, 45)
        day.add("walking", walk, 4, 10)
    else:
        day.add("walking", walk, 1, 2)
        day.add("bicycling", "commute", 15, 35)
        day.add("walking", walk, 1, 3)


def _work_block(day: _Day):
    rng = day.rng
    day.add("sitting_desk", "work", 25, 100)
    r = rng.random()
    if r < 0.45:
        day.add("walking", "work", 1, 5)
        day.add("standing", "work", 2, 10)
        day.add("walking", "work", 1, 4)
    elif r < 0.7:
        day.add("sitting_reading", "work", 10, 40)
    else:
        day.add("walking", "work", 1, 3)


def _leisure_block(day: _Day, person: Person):
    rng = day.rng
    r = rng.random()
    if r < 0.25:
        day.add("household", "home", 15, 60)
    elif r < 0.45:
        day.add("walking", "leisure", 15, 60)
        day.add("standing", "leisure", 2, 10)
    elif r < 0.55 and person.commute == "bicycle":
        day.add("bicycling", "leisure", 20, 60)
    elif r < 0.65:
        day.add("walking", "commute", 1, 3)
        day.add("driving", "leisure", 10, 30)
        day.add("walking", "leisure", 20, 60)
        day.add("driving", "leisure", 10, 30)
    elif r < 0.8:
        day.add("sitting_reading", "leisure", 20, 60)
    else:
        day.add("sitting_tv", "home", 30, 90)


def _evening_filler(day: _Day):
    rng = day.rng
    r = rng.random()
    if r < 0.4:
        day.add("sitting_tv", "home", 30, 120)
    elif r < 0.6:
        day.add("sitting_reading", "home", 15, 60)
    elif r < 0.7:
        day.add("sitting_desk", "home", 15, 60)
    elif r < 0.85:
        day.add("standing", "home", 3, 15)
    elif r < 0.93:
        day.add("household", "home", 5, 20)
    else:
        day.add("walking", "home", 1, 4)


def _awake_day(rng, person: Person, length_s: float, workday: bool) -> list[tuple[str, str, float]]:
    """Items of one awake period of ``length_s`` seconds starting at wake-up."""
    day = _Day(rng, length_s)
    hour = 3600.0
    wake = person.wake_hour
    # morning routine
    day.add("standing", "home", 4, 12)
    if rng.random() < 0.7:
        day.add("nonwear", "home", 8, 25)  # shower
    day.add("standing", "home", 2, 6)
    day.add("household", "home", 4, 10)
    day.add("eating", "home", 8, 20 if workday else 35)
    day.add("walking", "home", 1, 3)
    if workday:
        _commute(day, person.commute)
        day.until((12.5 - wake) * hour, lambda: _work_block(day))
        day.add("walking", "work", 2, 8)
        day.add("eating", "work", 15, 35)
        if rng.random() < 0.3:
            day.add("walking", "leisure", 10, 20)
        else:
            day.add("walking", "work", 2, 6)
        day.until((rng.normal(17.0, 0.5) - wake) * hour, lambda: _work_block(day))
        _commute(day, person.commute, home=True)
    else:
        day.until((12.5 - wake) * hour, lambda: _leisure_block(day, person))
        day.add("eating", "leisure" if rng.random() < 0.4 else "home", 20, 45)
        day.until((18.0 - wake) * hour, lambda: _leisure_block(day, person))
    # evening
    if person.runner and rng.random() < 0.35:
        day.add("walking", "leisure", 2, 4)
        day.add("running", "leisure", 20, 45)
        day.add("walking", "leisure", 3, 8)
        day.add("standing", "home", 2, 5)
        day.add("nonwear", "home", 10, 20)
    day.add("household", "home", 20, 45)
    day.add("eating", "home", 20, 40)
    day.add("household", "home", 5, 15)
    if rng.random() < 0.25:
        day.add("nonwear", "home", 40, 150)  # device off for the evening: long enough to be detectable
    day.until(length_s, lambda: _evening_filler(day))
    return day.items


def daily_schedule(
    rng, person: Person, start_clock_s: float, duration_s: float, weekday0: int = 0
) -> list[Bout]:
    """Bouts covering ``duration_s`` seconds of a recording that starts ``start_clock_s`` seconds after a midnight.

    Parameters
    ----------
    rng : numpy.random.Generator
    person : Person
    start_clock_s : float
        Recording start as seconds after midnight of its first day (so the day's plan can be aligned).
    duration_s : float
        Recording length in seconds.
    weekday0 : int
        Weekday of the recording's first day (Monday = 0); Saturdays and Sundays are days off.

    Returns
    -------
    list of Bout
        Contiguous, non-overlapping bouts from 0 to ``duration_s``, times relative to the recording start.
    """
    items: list[tuple[str, str, float, float]] = []  # name, context, start, end in clock seconds from day -1
    t = 0.0
    onset = 0.0  # asleep at midnight of day -1
    day = -1
    end_clock = 86400.0 + start_clock_s + duration_s
    while t < end_clock:
        origin = (day + 1) * 86400.0
        weekday = (weekday0 + day) % 7 < 5
        workday = weekday and person.works
        wake = origin + (person.wake_hour + rng.normal(0.0, 0.3) + (0.0 if workday else 0.8)) * 3600.0
        wake = max(wake, onset + 4 * 3600.0)
        items.append(("sleep", "default", onset, wake))
        next_onset = origin + (person.sleep_hour + rng.normal(0.0, 0.4) + (0.0 if workday else 0.5)) * 3600.0
        t = wake
        for name, context, dur in _awake_day(rng, person, next_onset - wake, workday):
            items.append((name, context, t, t + dur))
            t += dur
        onset = t
        day += 1

    offset = 86400.0 + start_clock_s
    bouts: list[Bout] = []
    for name, context, s, e in items:
        s, e = max(s - offset, 0.0), min(e - offset, duration_s)
        if e <= s:
            continue
        bouts.append(_make_bout(rng, name, context, s, e))
    return bouts


def _make_bout(rng, name: str, context: str, s: float, e: float) -> Bout:
    text = choose_annotation(rng, name, context)
    if text and name != "sleep" and rng.random() < P_UNANNOTATED:
        text = ""
    return Bout(float(s), float(e), name, text)


def explicit_schedule(rng, items) -> list[Bout]:
    """Bouts from a user-given list of ``(activity, seconds)`` or ``(activity, seconds, context)`` items.

    Annotations are drawn for each bout (never left out), so a test can ask for exactly the activities it needs.
    """
    bouts: list[Bout] = []
    t = 0.0
    for k, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError(f"schedule item {k} must be (activity, seconds[, context]), got {item!r}")
        name, seconds = item[0], float(item[1])
        context = item[2] if len(item) == 3 else "default"
        activity(name)  # validates the name
        if not np.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"schedule item {k}: duration must be a positive number of seconds, got {item[1]!r}")
        bouts.append(Bout(t, t + seconds, name, choose_annotation(rng, name, context)))
        t += seconds
    if not bouts:
        raise ValueError("schedule is empty")
    return bouts


def activity_codes(bouts: list[Bout]) -> np.ndarray:
    """Per-bout activity codes (int8), in the order of `activities.NAMES`."""
    return np.array([NAMES.index(b.activity) for b in bouts], dtype=np.int8)
