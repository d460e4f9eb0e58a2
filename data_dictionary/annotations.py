"""Parsing CAPTURE-24 annotation strings into CPA code, MET value and context tags.

An annotation is a ``;``-separated list: context tags, an optional ``<CPA code> <description>`` item, and a final
``MET <value>`` item, e.g. ``transportation;walking;17250 walking as the single means to a destination not to work
or class;MET 3.0``. The regexes are those of the project spec (capture24.md section 4), applied to the exact string:
strings are dictionary keys, so whitespace is never normalised (two real keys differ only by a double space).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

#: CPA code: the first 3-5 digit run at the start of an item and followed by whitespace.
CPA_CODE_RE = re.compile(r"(?:^|;)\s*(\d{3,5})\s")
_ITEM_CODE_RE = re.compile(r"\s*(\d{3,5})\s")
#: MET value: the last item, ``MET <number>``. The spec's form is ``;MET ([0-9.]+)$``; ``^`` is also accepted so
#: that an annotation made of the MET item alone still parses.
MET_RE = re.compile(r"(?:^|;)MET ([0-9.]+)$")


@dataclass(frozen=True)
class ParsedAnnotation:
    """The parts of one annotation string.

    Attributes
    ----------
    annotation : str or None
        The string as given (None for a missing annotation).
    cpa_code : int or None
        Compendium of Physical Activities code, None when the string carries none (49 of the 206 public
        annotations, e.g. ``walking;MET 3.0``).
    description : str or None
        The text after the CPA code in its item (leading whitespace removed), None without a code.
    met : float or None
        The MET value of the final ``MET`` item, None when absent or not a number.
    tags : tuple of str
        The other ``;``-separated items (context tags such as ``home activity`` or ``sitstand+activity``), in order.
    """

    annotation: Optional[str]
    cpa_code: Optional[int]
    description: Optional[str]
    met: Optional[float]
    tags: tuple


_MISSING = ParsedAnnotation(None, None, None, None, ())


def is_missing(annotation) -> bool:
    """True for the values that mean "no annotation": None, NaN, pandas NA and the empty string."""
    if annotation is None:
        return True
    if isinstance(annotation, float) and math.isnan(annotation):
        return True
    if isinstance(annotation, str):
        return annotation == ""
    try:  # pandas.NA and similar scalar missing markers
        import pandas as pd

        return bool(pd.isna(annotation))
    except (TypeError, ValueError):
        return False


def parse_annotation(annotation) -> ParsedAnnotation:
    """Split a CAPTURE-24 annotation string into CPA code, description, MET value and context tags.

    Parameters
    ----------
    annotation : str or None
        The exact annotation string. None, NaN, pandas NA and ``""`` mean "unannotated".

    Returns
    -------
    ParsedAnnotation
        All fields None (and no tags) for a missing annotation. A string that follows no part of the grammar still
        parses: every item is then a tag.

    Raises
    ------
    TypeError
        ``annotation`` is neither a string nor a missing-value marker.

    Examples
    --------
    >>> p = parse_annotation("transportation;walking;17250 walking as the single means to a destination not to "
    ...                      "work or class;MET 3.0")
    >>> p.cpa_code, p.met, p.tags
    (17250, 3.0, ('transportation', 'walking'))
    >>> parse_annotation("walking;MET 3.0").cpa_code is None
    True
    """
    if is_missing(annotation):
        return _MISSING
    if not isinstance(annotation, str):
        raise TypeError(f"an annotation must be a string or missing, not {type(annotation).__name__}")

    items = annotation.split(";")
    met = None
    m = MET_RE.search(annotation)
    if m is not None:
        try:
            met = float(m.group(1))
        except ValueError:  # e.g. "MET 1.2.3": keep the item as a tag rather than fail
            m = None
        else:
            items = items[:-1]

    # The spec's code regex, (?:^|;)\s*(\d{3,5})\s, can only match inside one item, anchored at its start (';' is
    # not whitespace), so matching each item in turn finds the same first code and tells which item holds it.
    code = description = code_item = None
    for i, item in enumerate(items):
        m = _ITEM_CODE_RE.match(item)
        if m is not None:
            code, code_item = int(m.group(1)), i
            description = item[m.end():].lstrip()
            break
    tags = tuple(item for i, item in enumerate(items) if i != code_item)
    return ParsedAnnotation(annotation, code, description, met, tags)
