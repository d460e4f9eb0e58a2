"""Atomic writes: every output goes to a hidden temporary file in its own folder and is renamed into place.

A reader (or a rerun deciding what is done) never sees a half-written file, and a killed run leaves no file under
the final name; leftovers are named ``.<name>.<random>.tmp``, which pyarrow's dataset readers skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, fsync: bool = False, mode: int = 0o644):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds, delete it if not.

    Parameters
    ----------
    path : str or os.PathLike
        The final file; its folder is created if needed.
    fsync : bool
        Flush the file to disk before the rename (for outputs that mark work as done).
    mode : int
        Permissions of the final file (mkstemp creates 0600).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, obj, fsync: bool = False, **dump_options) -> None:
    """Write ``obj`` as indented JSON (``json.dump`` options may be given), atomically."""
    dump_options.setdefault("indent", 2)
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, **dump_options)
            fh.write("\n")
