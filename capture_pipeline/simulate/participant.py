"""`simulate_participant`: one simulated participant as a `Recording` plus the truth behind it."""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..calibration import CalibrationCoefficients
from ..recording import Recording
from . import device, signals
from .activities import NAMES
from .person import Person, draw_person
from .schedule import Bout, daily_schedule, explicit_schedule

#: Offsets (°C) from the person's skin temperature of the device temperature per activity while worn: warmer
#: under the bedclothes, cooler outdoors.
_TEMP_OFFSET = {"sleep": 2.0, "walking": -1.5, "bicycling": -2.0, "running": -1.0}


@dataclass
class ParticipantTruth:
    """Everything the simulator knows about a participant, for checking the pipeline against.

    Attributes
    ----------
    pid : str
    seed : int
    start_ns : int
        Time of the first sample (ns since 1970, naive device-local clock).
    fs : float
        Configured (nominal) sample rate, Hz.
    fs_true : float
        True sample rate of the device clock, Hz (below ``fs`` when the clock error is on).
    n_samples : int
    person : Person
    calibration_error : device.CalibrationError
        What the device does to the true acceleration.
    bouts : list of Bout
        Activity and annotation bouts, seconds from ``start_ns``.
    device_id, session_id : int
    ambient_temp_c : float
        Room temperature the device cools to when taken off.
    clipped_samples : int
    """

    pid: str
    seed: int
    start_ns: int
    fs: float
    fs_true: float
    n_samples: int
    person: Person
    calibration_error: device.CalibrationError
    bouts: list
    device_id: int
    session_id: int
    ambient_temp_c: float
    clipped_samples: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def calibration(self) -> CalibrationCoefficients:
        """The coefficients that undo the device's calibration error (what an ideal calibration fit returns)."""
        return self.calibration_error.correction()

    def calibration_at(self, mean_temp: float) -> CalibrationCoefficients:
        """`calibration` re-expressed around another reference temperature ``mean_temp`` (°C).

        ``offset + k·(T − Tr) = (offset + k·(m − Tr)) + k·(T − m)``, so only the offsets change.
        """
        c = self.calibration
        off = np.asarray(c.offset) + np.asarray(c.temp_coef) * (mean_temp - c.mean_temp)
        offset = tuple(float(v) for v in off)
        return CalibrationCoefficients(offset, c.gain, c.temp_coef, float(mean_temp), dict(c.info))

    def bout_bounds_ns(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and end times (int64 ns) of the bouts."""
        s = np.array([b.start_s for b in self.bouts])
        e = np.array([b.end_s for b in self.bouts])
        return self.start_ns + np.round(s * 1e9).astype(np.int64), self.start_ns + np.round(e * 1e9).astype(np.int64)

    def bout_index(self, time_ns) -> np.ndarray:
        """Index of the bout containing each time (int64 ns); -1 outside the recording."""
        starts, ends = self.bout_bounds_ns()
        time_ns = np.asarray(time_ns, dtype=np.int64)
        idx = np.searchsorted(starts, time_ns, side="right") - 1
        idx[(idx < 0) | (time_ns >= ends[-1])] = -1
        return idx

    def activity_codes(self, time_ns) -> np.ndarray:
        """True activity code (index in `activities.NAMES`, int8) at each time; -1 outside the recording."""
        codes = np.array([NAMES.index(b.activity) for b in self.bouts], dtype=np.int8)
        idx = self.bout_index(time_ns)
        return np.where(idx >= 0, codes[np.maximum(idx, 0)], -1).astype(np.int8)

    def annotations(self, time_ns) -> np.ndarray:
        """Annotation string at each time (object array; None where unannotated or outside the recording)."""
        texts = np.array([b.annotation or None for b in self.bouts] + [None], dtype=object)
        return texts[self.bout_index(time_ns)]  # index -1 picks the trailing None

    def nonwear_intervals(self) -> list[tuple[int, int]]:
        """``(start_ns, end_ns)`` of every non-wear bout."""
        starts, ends = self.bout_bounds_ns()
        return [(int(s), int(e)) for s, e, b in zip(starts, ends, self.bouts) if b.activity == "nonwear"]

    def seconds_per_activity(self) -> dict:
        """Total seconds of each activity."""
        out = {name: 0.0 for name in NAMES}
        for b in self.bouts:
            out[b.activity] += b.duration_s
        return out

    def to_dict(self) -> dict:
        """A JSON-ready dictionary (times as ISO strings and ns; see `save`)."""
        starts, ends = self.bout_bounds_ns()
        iso = lambda ns: str(np.datetime64(int(ns), "ns"))  # noqa: E731
        return {
            "pid": self.pid,
            "seed": self.seed,
            "start": iso(self.start_ns),
            "start_ns": int(self.start_ns),
            "fs": self.fs,
            "fs_true": self.fs_true,
            "n_samples": self.n_samples,
            "device_id": self.device_id,
            "session_id": self.session_id,
            "ambient_temp_c": self.ambient_temp_c,
            "clipped_samples": self.clipped_samples,
            "person": self.person.to_dict(),
            "calibration_error": self.calibration_error.to_dict(),
            "calibration": self.calibration.to_dict(),
            "seconds_per_activity": self.seconds_per_activity(),
            "nonwear": [
                {"start": iso(s), "end": iso(e), "start_ns": s, "end_ns": e} for s, e in self.nonwear_intervals()
            ],
            "bouts": [
                {
                    "start": iso(s),
                    "end": iso(e),
                    "start_s": b.start_s,
                    "end_s": b.end_s,
                    "activity": b.activity,
                    "annotation": b.annotation,
                }
                for s, e, b in zip(starts, ends, self.bouts)
            ],
            **self.extra,
        }

    def save(self, path) -> None:
        """Write the truth as JSON (to a temporary name, then renamed)."""
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "ParticipantTruth":
        """Read a truth JSON written by `save`."""
        with open(path) as fh:
            d = json.load(fh)
        pd_ = dict(d["person"])
        pd_["wrist_rotation"] = tuple(pd_["wrist_rotation"])
        ce = d["calibration_error"]
        return cls(
            pid=d["pid"],
            seed=d["seed"],
            start_ns=int(d["start_ns"]),
            fs=float(d["fs"]),
            fs_true=float(d["fs_true"]),
            n_samples=int(d["n_samples"]),
            person=Person(**pd_),
            calibration_error=device.CalibrationError(
                tuple(ce["offset"]), tuple(ce["gain"]), tuple(ce["temp_coef"]), float(ce["ref_temp"])
            ),
            bouts=[Bout(b["start_s"], b["end_s"], b["activity"], b["annotation"]) for b in d["bouts"]],
            device_id=int(d["device_id"]),
            session_id=int(d["session_id"]),
            ambient_temp_c=float(d["ambient_temp_c"]),
            clipped_samples=int(d.get("clipped_samples", 0)),
        )


def participant_seed_sequence(pid: str, seed: int) -> np.random.SeedSequence:
    """The seed sequence of participant ``pid`` in a cohort drawn with ``seed`` (stable across runs and machines)."""
    return np.random.SeedSequence([int(seed), zlib.crc32(pid.encode("utf-8"))])


def _pid(pid) -> str:
    if isinstance(pid, (int, np.integer)) and not isinstance(pid, bool):
        if pid < 0:
            raise ValueError(f"participant number must be >= 0, got {pid}")
        return f"P{int(pid):03d}"
    if isinstance(pid, str) and pid.strip() and all(c.isalnum() or c in "-_" for c in pid):
        return pid
    raise ValueError(f"pid must be a participant number or a name of letters, digits, '-' and '_', got {pid!r}")


def _start_ns(start, rng) -> int:
    if start is None:
        # a random whole minute between 07:00 and 11:00 on a random day of 2014-2016 (CAPTURE-24's years)
        day = np.datetime64("2014-01-01") + int(rng.integers(0, 3 * 365))
        minute = int(rng.integers(7 * 60, 11 * 60))
        return int((day.astype("datetime64[ns]") + np.timedelta64(minute, "m")).astype(np.int64))
    if getattr(start, "tzinfo", None) is not None:
        raise ValueError("start must be a naive local time (device clocks have no time zone), got an aware one")
    try:
        ts = np.datetime64(start, "ns")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"start must be a date-time such as '2016-11-13 08:00:00', got {start!r}") from exc
    if np.isnat(ts):
        raise ValueError("start must not be NaT")
    year = ts.astype("datetime64[Y]").astype(int) + 1970
    if not 2000 <= year <= 2063:
        raise ValueError(f"start year must be 2000-2063 (the range a CWA file can hold), got {year}")
    return int(ts.astype(np.int64))


def simulate_participant(
    pid,
    hours: float | None = None,
    seed: int = 0,
    start=None,
    *,
    fs: float = 100.0,
    schedule=None,
    clock_error: bool = True,
    per_sample_annotation: bool = True,
) -> tuple[Recording, ParticipantTruth]:
    """Simulate one participant's wrist accelerometer recording.

    Parameters
    ----------
    pid : str or int
        Participant id (``"P001"``) or number (1 → ``"P001"``). Together with ``seed`` it fixes everything.
    hours : float, optional
        Recording length (default 24 h). Leave it out when ``schedule`` is given: the schedule sets the length.
    seed : int
        Cohort seed; the same ``(pid, seed)`` always gives the same participant, whatever the other arguments.
    start : str, datetime-like or None
        First sample time (naive local). Default: a random whole minute between 07:00 and 11:00 in 2014-2016.
    fs : float
        Configured sample rate (Hz), 25-3200.
    schedule : sequence of (activity, seconds[, context]), optional
        An explicit bout list instead of the daily plan (see `activities.NAMES`); useful in tests.
    clock_error : bool
        If True (default), the device clock runs 0.2-1.6 % slow, as real AX3 clocks do: the samples are then
        spaced ``1/fs_true`` apart, not ``1/fs``.
    per_sample_annotation : bool
        Put the annotation of every sample into ``extra['annotation']`` (object array; costs 8 bytes a sample).

    Returns
    -------
    recording : Recording
        ``time`` (the true sample times), ``xyz`` (the device reading in g, float32: calibration error, noise and
        ±8 g clipping, not yet quantised), ``temperature`` (°C), ``extra['activity']`` (int8 codes into
        `activities.NAMES`) and, if asked, ``extra['annotation']`` (None where unannotated).
    truth : ParticipantTruth
        Person, device calibration error and its correction, clock rate, bouts and non-wear intervals.

    Raises
    ------
    ValueError
        Bad arguments (non-positive hours, unknown activity in ``schedule``, an aware ``start``...).
    """
    pid = _pid(pid)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(fs, (int, float)) and 25.0 <= fs <= 3200.0):
        # below 25 Hz the vehicle-vibration and running-impact bands do not fit under the Nyquist frequency
        raise ValueError(f"fs must be a sample rate in Hz between 25 and 3200, got {fs!r}")
    ss_person, ss_schedule, ss_signal, ss_device = participant_seed_sequence(pid, seed).spawn(4)
    rng_person = np.random.default_rng(ss_person)
    rng_schedule = np.random.default_rng(ss_schedule)
    rng_signal = np.random.default_rng(ss_signal)
    rng_device = np.random.default_rng(ss_device)

    person = draw_person(rng_person)
    start_ns = _start_ns(start, rng_person)
    if schedule is not None:
        if hours is not None:
            raise ValueError("give either hours or an explicit schedule, not both (the schedule sets the length)")
        bouts = explicit_schedule(rng_schedule, schedule)
        duration_s = bouts[-1].end_s
    else:
        hours = 24.0 if hours is None else hours
        if not isinstance(hours, (int, float, np.number)) or not np.isfinite(hours) or hours <= 0:
            raise ValueError(f"hours must be a positive number, got {hours!r}")
        duration_s = float(hours) * 3600.0
        midnight = np.datetime64(start_ns, "ns").astype("datetime64[D]")
        clock_s = (start_ns - int(midnight.astype("datetime64[ns]").astype(np.int64))) / 1e9
        weekday0 = int((midnight.astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday
        bouts = daily_schedule(rng_schedule, person, clock_s, duration_s, weekday0)

    fs_true = device.draw_clock_rate(rng_device, float(fs), clock_error)
    n = int(np.floor(duration_s * fs_true))
    if n < 2:
        raise ValueError(f"the recording would have {n} samples; ask for more time")
    time = device.sample_times(start_ns, n, fs_true)
    truth = ParticipantTruth(
        pid=pid,
        seed=int(seed),
        start_ns=start_ns,
        fs=float(fs),
        fs_true=fs_true,
        n_samples=n,
        person=person,
        calibration_error=device.draw_calibration_error(rng_device),
        bouts=bouts,
        device_id=int(rng_device.integers(10000, 100000)),
        session_id=int(rng_device.integers(1, 2**31)),
        ambient_temp_c=float(rng_device.normal(21.5, 1.0)),
    )
    starts, _ = truth.bout_bounds_ns()
    first = np.searchsorted(time, starts, side="left")
    slices = list(zip(first, np.append(first[1:], n)))
    names = [b.activity for b in bouts]

    true_xyz = signals.synthesise(rng_signal, slices, names, fs_true, person, n)
    targets = [
        truth.ambient_temp_c if name == "nonwear" else person.skin_temp_c + _TEMP_OFFSET.get(name, 0.0)
        for name in names
    ]
    temp = device.temperature(rng_device, n, fs_true, slices, targets)
    xyz, clipped = device.observe(rng_device, true_xyz, temp, truth.calibration_error)
    del true_xyz
    truth.clipped_samples = clipped

    # per-sample truth straight from the bout slices (same as truth.activity_codes(time), without a search)
    lengths = np.diff(np.append(first, n))
    codes = np.array([NAMES.index(name) for name in names], dtype=np.int8)
    extra = {"activity": np.repeat(codes, lengths)}
    if per_sample_annotation:
        texts = np.array([b.annotation or None for b in bouts], dtype=object)
        extra["annotation"] = np.repeat(texts, lengths)
    meta = {
        "format": "simulated",
        "path": None,
        "device_type": "AX3",
        "device_id": truth.device_id,
        "session_id": truth.session_id,
        "start": str(np.datetime64(int(time[0]), "ns")),
        "end": str(np.datetime64(int(time[-1]), "ns")),
        "configured_fs": float(fs),
        "range_g": int(device.RANGE_G),
        "firmware": None,
        "pid": pid,
    }
    qc = {"samples": n, "clipped_samples": clipped, "gaps": [], "measured_fs": fs_true}
    rec = Recording(time=time, xyz=xyz, temperature=temp, fs=float(fs), meta=meta, qc=qc, extra=extra)
    return rec, truth

