"""The `Recording`: what every reader returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass
class Recording:
    """A raw accelerometer recording, as read from a device file.

    Attributes
    ----------
    time : numpy.ndarray of int64, shape (n,)
        Per-sample time in nanoseconds since 1970-01-01 of the *naive device-local* clock (the device
        stores local wall-clock time without zone; it is kept "as if UTC" and never shifted).
    xyz : numpy.ndarray of float32, shape (n, 3)
        Acceleration in g.
    temperature : numpy.ndarray of float32, shape (n,), or None
        Temperature in degrees Celsius, per sample (constant within a device block), or None when the source has
        none (CSV).
    gyro : numpy.ndarray of float32, shape (n, 3), or None
        Angular velocity in deg/s (Axivity AX6 and 6-axis CSV exports only).
    fs : float
        Nominal (configured) sample rate in Hz. The true rate differs; see ``qc['measured_fs']``.
    meta : dict
        File and device metadata: ``format``, ``path``, ``device_type``, ``device_id``, ``session_id``,
        ``start``, ``end`` (ISO strings of the first and last sample), ``configured_fs``, ``range_g``,
        ``firmware`` and format-specific extras.
    qc : dict
        Quality-control facts: ``samples``, ``clipped_samples``, ``gaps`` (list of ``{"start": iso, "length_s":
        float}``), and for block formats ``blocks``, ``blocks_read``, ``corrupt_blocks``, ``corrupt_block_indices``.
    extra : dict
        Further per-sample arrays of length n (e.g. ``temperature_raw``, ``light``, ``annotation``).
    """

    time: np.ndarray
    xyz: np.ndarray
    temperature: Optional[np.ndarray] = None
    gyro: Optional[np.ndarray] = None
    fs: float = 100.0
    meta: dict = field(default_factory=dict)
    qc: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.time)
        if self.time.dtype != np.int64:
            raise TypeError("Recording.time must be int64 nanoseconds")
        if self.xyz.shape != (n, 3):
            raise ValueError(f"Recording.xyz must have shape ({n}, 3), got {self.xyz.shape}")
        for name in ("temperature", "gyro"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"Recording.{name} has {len(arr)} rows for {n} samples")
        for name, arr in self.extra.items():
            if len(arr) != n:
                raise ValueError(f"Recording.extra[{name!r}] has {len(arr)} rows for {n} samples")

    def __len__(self) -> int:
        return len(self.time)

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last sample (0 for fewer than two samples)."""
        return float(self.time[-1] - self.time[0]) / 1e9 if len(self.time) > 1 else 0.0

    def slice(self, start: int, stop: int) -> "Recording":
        """The samples ``start:stop`` as a new Recording sharing metadata (QC is copied, not recomputed)."""
        sl = slice(start, stop)
        return Recording(
            time=self.time[sl],
            xyz=self.xyz[sl],
            temperature=None if self.temperature is None else self.temperature[sl],
            gyro=None if self.gyro is None else self.gyro[sl],
            fs=self.fs,
            meta=dict(self.meta),
            qc=dict(self.qc),
            extra={k: v[sl] for k, v in self.extra.items()},
        )

    def to_frame(self):
        """The samples as a pandas DataFrame indexed by naive ``datetime64[ns]`` time."""
        import pandas as pd

        cols: dict[str, Any] = {"x": self.xyz[:, 0], "y": self.xyz[:, 1], "z": self.xyz[:, 2]}
        if self.temperature is not None:
            cols["temperature"] = self.temperature
        if self.gyro is not None:
            cols.update(gx=self.gyro[:, 0], gy=self.gyro[:, 1], gz=self.gyro[:, 2])
        cols.update(self.extra)
        return pd.DataFrame(cols, index=pd.DatetimeIndex(self.time.view("datetime64[ns]"), name="time"))
