"""Write a feature table exactly as the reference tool writes its epoch file (spec `features.md` §7).

For users who compare with biobankAccelerometerAnalysis v2.3.0 output column by column, or diff files: the column
order interleaves the QC integers after ``temp``; values are rounded as Java's ``DecimalFormat`` rounds the exact
binary value (6 decimals CEILING for features #1-13 and #56-59, 2 decimals CEILING for ``temp``, 8 decimals
HALF_UP for #15-55, 3 decimals HALF_UP for #60-126); ``xfft0`` is preceded by a space; NaN is ``NaN``, infinities
``inf``/``-inf``. For the golden test files the output is byte-identical to the reference's.

Formatting uses `decimal` per cell (about 1 s per 100,000 cells): meant for comparisons and exports, not for the
batch path, which keeps the float64 table.
"""

from __future__ import annotations

import math
import os
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

import pandas as pd

from .columns import QC_COLUMNS, REFERENCE_EPOCH_COLUMNS, REFERENCE_FORMAT

_MODES = {"CEILING": ROUND_CEILING, "HALF_UP": ROUND_HALF_UP}


def format_reference(value: float, decimals: int, mode: str) -> str:
    """One value as the reference's ``DecimalFormat("0.000…")`` with rounding ``mode`` ('CEILING' or 'HALF_UP').

    Java keeps the sign of values that round to zero (``-0.000``), and formats the exact binary value of the
    double; both are reproduced.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    q = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=_MODES[mode])
    text = format(q, "f")
    if (value < 0 or math.copysign(1.0, value) < 0) and not text.startswith("-"):
        text = "-" + text
    return text


def to_reference_csv(table: pd.DataFrame, path=None) -> str:
    """The reference epoch file for a table from `extract_features`.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of `extract_features` (``time``, the 126 features, the QC columns).
    path : str or os.PathLike, optional
        Where to write the text (also returned).

    Returns
    -------
    str
        Header line and one line per window, each ending with ``\\n``.
    """
    missing = [c for c in REFERENCE_EPOCH_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing[:5]}{'...' if len(missing) > 5 else ''}")
    cells = {"time": pd.to_datetime(table["time"]).dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3].tolist()}
    for col in REFERENCE_EPOCH_COLUMNS[1:]:
        values = table[col].to_numpy()
        if col in QC_COLUMNS:
            cells[col] = [str(int(v)) for v in values]
        else:
            decimals, mode = REFERENCE_FORMAT[col]
            cells[col] = [format_reference(float(v), decimals, mode) for v in values]
    cells["xfft0"] = [" " + v for v in cells["xfft0"]]  # the reference's per-axis FFT string starts with a blank
    lines = [",".join(REFERENCE_EPOCH_COLUMNS)]
    lines += [",".join(row) for row in zip(*(cells[c] for c in REFERENCE_EPOCH_COLUMNS))]
    text = "\n".join(lines) + "\n"
    if path is not None:
        with open(os.fspath(path), "w", newline="") as fh:
            fh.write(text)
    return text
