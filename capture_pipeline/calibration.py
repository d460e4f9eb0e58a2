"""Calibration coefficients (van Hees et al. 2014 model) and how they are applied.

The model, per axis a, is ``a' = offset_a + gain_a * a + temp_coef_a * (T - mean_temp)`` as in the reference tool
(`spec/features.md` §3.3-3.4). Fitting the coefficients lives in `capture_pipeline.calibration_fit`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class CalibrationCoefficients:
    """Per-axis offset (g), gain (unitless) and temperature coefficient (g/°C) around ``mean_temp`` (°C).

    The default instance is the identity (offsets 0, gains 1, temperature coefficients 0).
    """

    offset: tuple = (0.0, 0.0, 0.0)
    gain: tuple = (1.0, 1.0, 1.0)
    temp_coef: tuple = (0.0, 0.0, 0.0)
    mean_temp: float = 0.0
    info: dict = field(default_factory=dict, compare=False)

    @property
    def is_identity(self) -> bool:
        """True when applying the coefficients changes nothing."""
        return (
            all(o == 0.0 for o in self.offset)
            and all(g == 1.0 for g in self.gain)
            and all(t == 0.0 for t in self.temp_coef)
        )

    def arrays(self):
        """``(offset, gain, temp_coef)`` as float64 arrays of shape (3,), and ``mean_temp`` as a float."""
        return (
            np.asarray(self.offset, dtype=np.float64),
            np.asarray(self.gain, dtype=np.float64),
            np.asarray(self.temp_coef, dtype=np.float64),
            float(self.mean_temp),
        )

    def apply(self, xyz, temperature=None):
        """Calibrated copy of ``xyz`` (n×3, g) as float64; ``temperature`` (n,) in °C, None = no temperature term."""
        offset, gain, temp_coef, mean_temp = self.arrays()
        out = offset + np.asarray(xyz, dtype=np.float64) * gain
        if temperature is not None and np.any(temp_coef != 0):
            out += (np.asarray(temperature, dtype=np.float64) - mean_temp)[:, None] * temp_coef
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["offset"], d["gain"], d["temp_coef"] = list(self.offset), list(self.gain), list(self.temp_coef)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CalibrationCoefficients":
        return cls(
            offset=tuple(float(v) for v in d.get("offset", (0.0, 0.0, 0.0))),
            gain=tuple(float(v) for v in d.get("gain", (1.0, 1.0, 1.0))),
            temp_coef=tuple(float(v) for v in d.get("temp_coef", (0.0, 0.0, 0.0))),
            mean_temp=float(d.get("mean_temp", 0.0)),
            info=dict(d.get("info", {})),
        )

    @classmethod
    def from_json(cls, path) -> "CalibrationCoefficients":
        """Read coefficients a user wrote by hand or a previous run saved (keys as in `to_dict`)."""
        try:
            with open(path) as fh:
                d = json.load(fh)
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read calibration coefficients: {exc}") from exc
        for key in ("offset", "gain", "temp_coef"):
            if key in d and len(d[key]) != 3:
                raise InputError(path, f"calibration '{key}' must have 3 values, got {len(d[key])}")
        return cls.from_dict(d)

    def to_json(self, path) -> None:
        """Write the coefficients (and ``info``) as JSON that `from_json` reads back; atomic (temporary file, rename).

        Use it to reuse one file's fit for another recording (``--calibration FILE.json``).
        """
        from .summary import write_json_atomic

        write_json_atomic(path, self.to_dict())

    def summary(self) -> dict:
        """Flat reference-style keys (``calibration-xOffset(g)`` ...) as in the per-file summary."""
        from .summary import _calibration_section

        return _calibration_section(self)


IDENTITY = CalibrationCoefficients()
