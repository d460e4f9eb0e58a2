"""Which files a batch processes: expand files, directories and glob patterns; give each an output name."""

from __future__ import annotations

import glob
import os

#: Recording suffixes a directory or glob is searched for (case-insensitive). Explicitly named files are always
#: taken, whatever their name: the format is decided from the content.
SUFFIXES = (".cwa", ".cwa.gz", ".csv", ".csv.gz", ".bin", ".bin.gz", ".gt3x")

_GLOB_CHARS = set("*?[")


def _is_recording(name: str) -> bool:
    low = name.lower()
    return any(low.endswith(s) for s in SUFFIXES)


def expand_inputs(items) -> list[str]:
    """The input files named by ``items``, in a stable order and without duplicates.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        Files (taken as given, even if missing: the batch then lists them as failed), directories (searched
        recursively for ``.cwa``, ``.cwa.gz``, ``.csv``, ``.csv.gz``) and glob patterns (``**`` recurses).

    Returns
    -------
    list of str
        Paths; directory and glob matches sorted; a file reached twice (even by different spellings) kept once.
    """
    out, seen = [], set()

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)

    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(os.path.join(root, f) for f in files if _is_recording(f) and not f.startswith("."))
            for path in sorted(found):
                add(path)
        elif _GLOB_CHARS & set(item) and not os.path.exists(item):
            for path in sorted(glob.glob(item, recursive=True)):
                if os.path.isfile(path) and _is_recording(path):
                    add(path)
        else:
            add(item)
    return out


def output_name(path) -> str:
    """The participant id and output file stem of an input: its file name without ``.gz`` and the format suffix."""
    base = os.path.basename(os.fspath(path))
    if base.lower().endswith(".gz"):
        base = base[:-3]
    for ext in (".cwa", ".csv", ".bin", ".gt3x"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
            break
    return base


def assign_names(paths) -> list[tuple[str, str, str | None]]:
    """``(path, name, problem)`` for every input; ``problem`` is set when two inputs would write the same outputs.

    The first input keeps the name; later ones with the same name (case-insensitively, for file systems that
    ignore case) are refused rather than overwriting it.
    """
    owner = {}
    out = []
    for path in paths:
        name = output_name(path)
        key = name.lower()
        problem = None
        if not name or name.startswith((".", "_")):
            problem = f"output name {name!r} is empty or hidden (starts with '.' or '_'); rename the file"
        elif key in owner:
            problem = f"output name {name!r} is already used by {owner[key]}; rename one of the files"
        else:
            owner[key] = path
        out.append((path, name, problem))
    return out
