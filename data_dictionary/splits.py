"""Participant-level splits into labelled, unlabelled and test sets, stored as JSON with their seed.

The seed paper (Willetts et al., arXiv 1810.12176) uses 132 CAPTURE-24 participants: 20 whose labels are used,
92 used without labels and 20 for testing. Which 132 of the 151 public participants it used cannot be recovered,
so the split is drawn at random with a recorded seed. No participant is ever in two sets.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Optional, Sequence

import numpy as np

from capture_pipeline.atomic import write_json
from capture_pipeline.errors import InputError

#: The sets of a split, in the order they are drawn.
ROLES = ("labelled", "unlabelled", "test")
#: Split sizes of the seed paper.
PAPER_COUNTS = {"labelled": 20, "unlabelled": 92, "test": 20}
#: Presets (capture24 spec section 8): "paper" 20/92/20 (from 151, 19 are left unused); "all151" 20/rest/20.
PRESETS = {"paper": dict(PAPER_COUNTS), "all151": {"labelled": 20, "unlabelled": "rest", "test": 20}}
#: Value of the ``format`` key of split files.
SPLIT_FORMAT = "capture-pipeline-split"
SPLIT_VERSION = 1

# File names in a data directory that are not participants (CAPTURE-24 ships these beside P001.csv.gz ...).
_SIDE_FILES = {"metadata", "annotation-label-dictionary", "readme", "license", "licence"}
_SIDE_SUFFIXES = (".annotations", ".labels", ".predictions", ".summary")
_RECORDING_SUFFIXES = (".csv", ".csv.gz", ".cwa", ".cwa.gz", ".parquet", ".npy", ".npz", ".bin", ".gt3x")


@dataclass(frozen=True)
class Split:
    """Participant ids per role, the seed that drew them, and what was asked.

    Attributes
    ----------
    labelled, unlabelled, test : tuple of str
        Sorted participant ids of each set; the sets are disjoint.
    unused : tuple of str
        Participants of the input list in no set.
    seed : int
        Seed of ``numpy.random.default_rng`` used for the draw.
    requested : dict
        The sizes as asked (counts, fractions or "rest").
    """

    labelled: tuple
    unlabelled: tuple
    test: tuple
    unused: tuple = ()
    seed: Optional[int] = None
    requested: dict = field(default_factory=dict)

    def role_of(self) -> dict:
        """Participant id -> role (``labelled``, ``unlabelled``, ``test`` or ``unused``)."""
        out = {p: "unused" for p in self.unused}
        for role in ROLES:
            out.update({p: role for p in getattr(self, role)})
        return out

    def to_dict(self) -> dict:
        """The JSON-ready content of a split file."""
        from capture_pipeline import __version__

        return {
            "format": SPLIT_FORMAT,
            "version": SPLIT_VERSION,
            "seed": self.seed,
            "labelled": list(self.labelled),
            "unlabelled": list(self.unlabelled),
            "test": list(self.test),
            "unused": list(self.unused),
            "counts": {r: len(getattr(self, r)) for r in (*ROLES, "unused")},
            "requested": self.requested,
            "method": (
                "fixed CAPTURE-24 benchmark split (P001-P101 / P102-P151)"
                if self.requested.get("preset") == "benchmark"
                else "ids sorted, then numpy.random.default_rng(seed).permutation; labelled, unlabelled, test "
                "taken in that order"
            ),
            "created_by": f"capture-pipeline {__version__}",
        }


def _resolve_counts(n: int, sizes: dict) -> dict:
    """Turn counts, fractions and "rest" into participant counts for ``n`` participants."""
    fixed, fractions, rest = {}, {}, None
    for role in ROLES:
        v = sizes[role]
        if isinstance(v, str):
            if v != "rest":
                raise ValueError(f"{role}: {v!r} is neither a number nor 'rest'")
            if rest is not None:
                raise ValueError("only one set can take the rest")
            rest = role
        elif isinstance(v, bool):
            raise ValueError(f"{role}: {v!r} is not a size")
        elif isinstance(v, Integral):
            if v < 0:
                raise ValueError(f"{role}: a count cannot be negative ({v})")
            fixed[role] = int(v)
        elif isinstance(v, Real):
            v = float(v)
            if v.is_integer() and v > 1:
                fixed[role] = int(v)
            elif 0.0 <= v <= 1.0:
                fractions[role] = v
            else:
                raise ValueError(f"{role}: {v} is neither a whole count nor a fraction in [0, 1]")
        else:
            raise ValueError(f"{role}: {v!r} is not a size")
    if fractions:
        total = sum(fractions.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"the fractions add up to {total:g} > 1")
        # Largest-remainder rounding: the fractional sets together get round(total * n) participants, so that
        # e.g. 0.15 / 0.7 / 0.15 of 132 gives 20 / 92 / 20 and fractions adding up to 1 use everyone.
        share = {r: f * n for r, f in fractions.items()}
        counts = {r: math.floor(x + 1e-9) for r, x in share.items()}
        target = min(n, math.floor(total * n + 0.5))
        by_remainder = sorted(fractions, key=lambda r: (-(share[r] - counts[r]), ROLES.index(r)))
        for r in by_remainder[: max(0, target - sum(counts.values()))]:
            counts[r] += 1
        fixed.update(counts)
    if rest is not None:
        fixed[rest] = max(0, n - sum(fixed.values()))
    return fixed


def make_split(participants: Sequence[str], labelled=20, unlabelled=92, test=20, seed: int = 0,
               source: Optional[str] = None) -> Split:
    """Draw a participant-level split.

    Parameters
    ----------
    participants : sequence of str
        Participant ids (e.g. ``P001`` ... ``P151``). Their order does not matter: they are sorted first.
    labelled, unlabelled, test : int, float or "rest"
        Size of each set: a count (int), a fraction of all participants (float in [0, 1]) or ``"rest"`` (all not
        taken by the other two; at most one set). Default: the seed paper's 20 / 92 / 20.
    seed : int, default 0
        Seed of the draw; the same ids, sizes and seed always give the same split.
    source : str, optional
        Where the ids came from (for error messages).

    Returns
    -------
    Split

    Raises
    ------
    InputError
        Duplicate or empty ids, or fewer participants than the sizes ask for.
    """
    ids = [str(p) for p in participants]
    if any(not p.strip() for p in ids):
        raise InputError(source, "an empty participant id")
    dupes = sorted({p for p in ids if ids.count(p) > 1}) if len(set(ids)) != len(ids) else []
    if dupes:
        raise InputError(source, f"participant ids occur more than once: {dupes[:10]}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    requested = {"labelled": labelled, "unlabelled": unlabelled, "test": test}
    try:
        counts = _resolve_counts(len(ids), requested)
    except ValueError as exc:
        raise InputError(source, f"invalid split sizes: {exc}") from exc
    need = sum(counts.values())
    if need > len(ids):
        asked = " + ".join(f"{counts[r]} {r}" for r in ROLES)
        raise InputError(source, f"{len(ids)} participants, but the split asks for {asked} = {need}")

    ids.sort()
    order = np.random.default_rng(int(seed)).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    sets, start = {}, 0
    for role in ROLES:
        sets[role] = tuple(sorted(shuffled[start : start + counts[role]]))
        start += counts[role]
    unused = tuple(sorted(shuffled[start:]))
    return Split(**sets, unused=unused, seed=int(seed), requested=requested)


def benchmark_split(participants: Sequence[str], source: Optional[str] = None) -> Split:
    """The CAPTURE-24 benchmark split: P001-P101 labelled (training), P102-P151 test, none unlabelled.

    This is the fixed split of the CAPTURE-24 repository README (capture24 spec section 9), for comparison with
    its published numbers; it involves no random draw (``seed`` is None).

    Raises
    ------
    InputError
        An id that is not of the form ``P<number>`` with a number from 1 to 151, or an empty set.
    """
    labelled, test = [], []
    for p in map(str, participants):
        m = re.fullmatch(r"P(\d+)", p)
        if m is None or not 1 <= int(m.group(1)) <= 151:
            raise InputError(source, f"the benchmark split needs CAPTURE-24 ids P001-P151, got {p!r}")
        (labelled if int(m.group(1)) <= 101 else test).append(p)
    if not labelled or not test:
        raise InputError(source, "the benchmark split needs participants from both P001-P101 and P102-P151")
    return Split(labelled=tuple(sorted(labelled)), unlabelled=(), test=tuple(sorted(test)), seed=None,
                 requested={"preset": "benchmark", "labelled": "P001-P101", "test": "P102-P151"})


def write_split(split: Split, path) -> None:
    """Write a split as JSON, atomically (temporary file in the same folder, then rename)."""
    write_json(path, split.to_dict())


def read_split(path) -> Split:
    """Read and check a split file written by `write_split` (or by hand, with the lists and the seed).

    Raises
    ------
    InputError
        Not JSON, a missing list, non-string ids, or a participant in two sets.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise InputError(path, "split file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a JSON split file ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(path, "a split file must hold a JSON object")
    sets = {}
    for role in (*ROLES, "unused"):
        value = data.get(role, [] if role == "unused" else None)
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise InputError(path, f"'{role}' must be a list of participant id strings")
        if len(set(value)) != len(value):
            raise InputError(path, f"'{role}' lists a participant twice")
        sets[role] = tuple(value)
    seen: dict = {}
    for role, ids in sets.items():
        for p in ids:
            if p in seen:
                raise InputError(path, f"participant {p!r} is in both '{seen[p]}' and '{role}'")
            seen[p] = role
    return Split(
        labelled=sets["labelled"], unlabelled=sets["unlabelled"], test=sets["test"], unused=sets["unused"],
        seed=data.get("seed"), requested=data.get("requested", {}),
    )


def participant_id(filename: str) -> str:
    """Participant id of a recording file: the name without folder and without its (compound) extension.

    >>> participant_id("data/P001.csv.gz")
    'P001'
    """
    name = os.path.basename(filename)
    return re.sub(r"(\.[A-Za-z0-9]{1,8})+$", "", name) or name


def participants_from(source) -> list:
    """Participant ids from a folder of recordings or a list file.

    Parameters
    ----------
    source : str or os.PathLike
        A folder: one participant per recording file (``.csv``, ``.csv.gz``, ``.cwa``, ...), id = file name
        without extension; CAPTURE-24 side files (``metadata.csv``, ``annotation-label-dictionary.csv``,
        ``README``) and hidden files are skipped. A ``.csv`` file with a ``pid`` or ``participant`` column (such as
        CAPTURE-24's ``metadata.csv``). Any other file: one id per line; blank lines and ``#`` comments skipped.

    Raises
    ------
    InputError
        The path does not exist, holds no participant, or lists an id twice.
    """
    path = os.fspath(source)
    if os.path.isdir(path):
        ids = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if name.startswith(".") or not os.path.isfile(full):
                continue
            if not name.lower().endswith(_RECORDING_SUFFIXES):
                continue
            pid = participant_id(name)
            # side files of a participant (bout annotations beside a .cwa) are not participants of their own
            if pid.lower() in _SIDE_FILES or pid.lower().endswith(_SIDE_SUFFIXES):
                continue
            ids.append(pid)
        what = "no recording files (.csv, .csv.gz, .cwa, ...)"
    elif os.path.isfile(path):
        ids = _ids_from_file(path)
        what = "no participant ids"
    else:
        raise InputError(path, "participants: neither a folder of recordings nor a list file")
    if not ids:
        raise InputError(path, f"participants: {what} found")
    if len(set(ids)) != len(ids):
        dupes = sorted({p for p in ids if ids.count(p) > 1})
        raise InputError(path, f"participant ids occur more than once: {dupes[:10]}")
    return ids


def _ids_from_file(path: str) -> list:
    try:
        with open(path, encoding="utf-8-sig") as fh:  # tolerate a spreadsheet's byte-order mark
            lines = fh.read().splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(path, "participant list is not a text file") from exc
    if path.lower().endswith(".csv") and lines:
        import csv

        rows = list(csv.reader(lines))
        header = [h.strip().lower() for h in rows[0]]
        for col in ("participant", "pid"):
            if col in header:
                i = header.index(col)
                return [r[i].strip() for r in rows[1:] if len(r) > i and r[i].strip()]
        if len(header) > 1:
            raise InputError(path, f"a CSV participant list needs a 'participant' or 'pid' column; it has {rows[0]}")
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
