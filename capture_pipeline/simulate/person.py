"""Who is simulated: the traits that make one participant (and their device) differ from another."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: CAPTURE-24 age groups (quartiles of the study, `spec/capture24.md` §3).
AGE_GROUPS = ("18-29", "30-37", "38-52", "53+")

#: Commute modes and how often a simulated person has each.
COMMUTE_MODES = (("walk", 0.25), ("drive", 0.35), ("bus_train", 0.25), ("bicycle", 0.15))


@dataclass(frozen=True)
class Person:
    """Traits of one simulated participant.

    Attributes
    ----------
    age_group, sex : str
        For ``metadata.csv`` (CAPTURE-24 groups; 66 % female as in the study).
    walk_cadence_hz : float
        Step frequency when walking, 1.6-2.2 Hz (slower with age).
    run_cadence_hz : float
        Step frequency when running, 2.5-3.0 Hz.
    intensity : float
        Multiplier of movement amplitudes (about 0.75-1.3): some people move more vigorously than others.
    wrist_rotation : tuple of 9 floats
        Row-major 3×3 rotation from the nominal wrist frame to this person's device frame: how the strap sits
        (a tilt of up to ~15° and, for half of the people, the device worn turned by 180°).
    wake_hour, sleep_hour : float
        Usual wake-up and sleep-onset clock hours (sleep_hour may exceed 24).
    commute : str
        ``walk``, ``drive``, ``bus_train`` or ``bicycle``.
    runner : bool
        Whether the person goes for runs.
    works : bool
        Whether weekdays are working days at a desk.
    skin_temp_c : float
        Usual device temperature while worn (°C).
    """

    age_group: str
    sex: str
    walk_cadence_hz: float
    run_cadence_hz: float
    intensity: float
    wrist_rotation: tuple
    wake_hour: float
    sleep_hour: float
    commute: str
    runner: bool
    works: bool
    skin_temp_c: float

    @property
    def rotation(self) -> np.ndarray:
        """`wrist_rotation` as a 3×3 array."""
        return np.asarray(self.wrist_rotation, dtype=np.float64).reshape(3, 3)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["wrist_rotation"] = [round(float(v), 12) for v in self.wrist_rotation]
        return d


def _rotation(rng, max_tilt_deg: float, flip: bool) -> np.ndarray:
    """A rotation by small random angles about x, y and z, optionally followed by a half turn about z."""
    ax, ay, az = np.deg2rad(rng.uniform(-max_tilt_deg, max_tilt_deg, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    r = rz @ ry @ rx
    if flip:
        # strap put on the other way round: x and y reverse, z (out of the face) stays
        r = np.diag([-1.0, -1.0, 1.0]) @ r
    return r


def draw_person(rng) -> Person:
    """Draw a `Person` from the population model with the numpy Generator ``rng``."""
    age_i = int(rng.integers(0, len(AGE_GROUPS)))
    sex = "F" if rng.random() < 0.66 else "M"
    # older people walk a little slower; keep within the 1.6-2.2 Hz range of the brief
    walk = float(np.clip(rng.normal(2.0 - 0.07 * age_i, 0.1), 1.6, 2.2))
    run = float(rng.uniform(2.5, 3.0))
    intensity = float(np.clip(rng.lognormal(0.0, 0.15), 0.75, 1.3))
    rot = _rotation(rng, 15.0, flip=bool(rng.random() < 0.5))
    wake = float(np.clip(rng.normal(7.0, 0.6), 5.5, 9.0))
    # time in bed (CAPTURE-24's sleep labels come from a sleep diary) of 7-9 h on a work night
    sleep = wake + 24.0 - float(np.clip(rng.normal(8.0, 0.5), 7.0, 9.0))
    modes, p = zip(*COMMUTE_MODES)
    commute = str(rng.choice(modes, p=np.asarray(p) / sum(p)))
    runner = bool(rng.random() < 0.25)
    works = bool(rng.random() < 0.8)
    skin = float(rng.normal(31.0, 0.8))
    return Person(
        age_group=AGE_GROUPS[age_i],
        sex=sex,
        walk_cadence_hz=walk,
        run_cadence_hz=run,
        intensity=intensity,
        wrist_rotation=tuple(float(v) for v in rot.ravel()),
        wake_hour=wake,
        sleep_hour=sleep,
        commute=commute,
        runner=runner,
        works=works,
        skin_temp_c=skin,
    )
