"""Annotation -> activity class mappings: by CPA code (the seed paper's classes) or by exact string (CAPTURE-24).

The mappings are data, shipped beside this module and editable by users:

* ``cpa_classes.csv`` (``cpa_code,class,description``): the seed paper's appendix classes. A user file needs the
  columns ``cpa_code`` and ``class``; ``description`` and any other column are optional and ignored.
* an optional overrides file (``annotation,class``) keyed on the *exact* annotation string, which wins over the code
  lookup (e.g. to treat a double-space variant differently). An empty class there means "never a label".
* the CAPTURE-24 label schemes, keyed on the exact string: ``capture24_dictionary_public.csv`` (206 annotations of
  the public release: Willetts2018, WillettsSpecific2018, Walmsley2020) and ``capture24_dictionary_older.csv`` (the
  older 165-annotation file: Willetts2018, Doherty2018, Walmsley2020). Both are CAPTURE-24 data, CC BY 4.0
  (attribution in ``sources.json``).
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from capture_pipeline.errors import InputError

from .annotations import is_missing, parse_annotation

#: Why an annotation (or a window) has no class. ``LABELLED`` is the value for one that has.
LABELLED = "labelled"
UNANNOTATED = "unannotated"  # no annotation at all (NA)
NO_CPA_CODE = "no_cpa_code"  # the string carries no CPA code
CODE_NOT_MAPPED = "code_not_mapped"  # a CPA code that the mapping does not list
NOT_IN_SCHEME = "not_in_scheme"  # a string-keyed scheme does not list this exact string
EXCLUDED = "excluded_by_override"  # the overrides file maps the exact string to no class

#: Files shipped in this package.
CPA_CLASSES_FILE = "cpa_classes.csv"
PUBLIC_DICTIONARY_FILE = "capture24_dictionary_public.csv"
OLDER_DICTIONARY_FILE = "capture24_dictionary_older.csv"

#: The CAPTURE-24 label schemes and the shipped dictionaries that carry each, in order of precedence. The public
#: 206-row dictionary comes first; the older file adds its 47 strings that the public release does not have (on the
#: 118 strings both have, Willetts2018 and Walmsley2020 agree row for row). Doherty2018 exists only in the older file.
SCHEMES = {
    "Willetts2018": (PUBLIC_DICTIONARY_FILE, OLDER_DICTIONARY_FILE),
    "WillettsSpecific2018": (PUBLIC_DICTIONARY_FILE,),
    "Walmsley2020": (PUBLIC_DICTIONARY_FILE, OLDER_DICTIONARY_FILE),
    "Doherty2018": (OLDER_DICTIONARY_FILE,),
}

#: Name of the default mapping (the seed paper's appendix classes by CPA code).
PAPER = "paper"


def package_file(name: str):
    """Path (a ``Traversable``) of a data file shipped in ``data_dictionary``."""
    return resources.files(__package__) / name


def _read_csv(path, required: Iterable[str]) -> pd.DataFrame:
    """Read a mapping CSV as exact strings (no NA conversion, no whitespace changes) and check its columns."""
    try:
        if isinstance(path, (str, os.PathLike)):
            # utf-8-sig: spreadsheet programs often save CSV with a byte-order mark before the header.
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
        else:  # a Traversable of the package data
            with path.open("r", encoding="utf-8", newline="") as fh:
                df = pd.read_csv(fh, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError as exc:
        raise InputError(path, "mapping file not found") from exc
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable CSV mapping file ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]  # header names only; values stay exact
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(
            path, f"mapping file lacks column(s) {missing}; it has {list(df.columns)} (expected a header line)"
        )
    return df


def _parse_code(text: str) -> Optional[int]:
    text = text.strip()
    return int(text) if text.isdigit() else None


class LabelMapping:
    """Maps exact annotation strings to class names, by CPA code or by exact string.

    Build one with `load_cpa_mapping`, `load_label_scheme` or `get_mapping` rather than directly.

    Parameters
    ----------
    name : str
        A name for reports (``"paper"``, a scheme name or a file name).
    codes : dict of int to str, optional
        CPA code -> class. None for a string-keyed scheme.
    strings : dict of str to (str or None), optional
        Exact annotation string -> class (None: never a label). With ``codes`` these are overrides that win over
        the code lookup; without, they are the whole scheme.
    descriptions : dict of int to str, optional
        CPA code -> description, for reports.
    """

    def __init__(self, name: str, codes=None, strings=None, descriptions=None):
        if codes is None and strings is None:
            raise ValueError("a LabelMapping needs codes, strings or both")
        self.name = name
        self.codes = None if codes is None else dict(codes)
        self.strings = {} if strings is None else dict(strings)
        self.descriptions = {} if descriptions is None else dict(descriptions)

    @property
    def by_code(self) -> bool:
        """True when classes come from the CPA code (string entries are then overrides)."""
        return self.codes is not None

    @property
    def classes(self) -> tuple:
        """The class names this mapping can produce, sorted."""
        names = set(self.strings.values()) | (set(self.codes.values()) if self.codes else set())
        return tuple(sorted(c for c in names if c is not None))

    def classify(self, annotation) -> tuple:
        """The class of one annotation string and the reason when there is none.

        Returns
        -------
        (str or None, str)
            The class name (or None) and `LABELLED` or the reason it has none (`UNANNOTATED`, `NO_CPA_CODE`,
            `CODE_NOT_MAPPED`, `NOT_IN_SCHEME`, `EXCLUDED`).
        """
        if is_missing(annotation):
            return None, UNANNOTATED
        if annotation in self.strings:
            cls = self.strings[annotation]
            return (cls, LABELLED) if cls is not None else (None, EXCLUDED)
        if not self.by_code:
            return None, NOT_IN_SCHEME
        code = parse_annotation(annotation).cpa_code
        if code is None:
            return None, NO_CPA_CODE
        cls = self.codes.get(code)
        return (cls, LABELLED) if cls is not None else (None, CODE_NOT_MAPPED)

    def classify_many(self, annotations) -> tuple:
        """`classify` over an array of annotations, parsing each distinct string once.

        Parameters
        ----------
        annotations : array-like of str or None
            E.g. ``recording.extra['annotation']`` (object array, None for unannotated samples).

        Returns
        -------
        classes : numpy.ndarray of object
            Class name or None per element.
        reasons : numpy.ndarray of object
            `LABELLED` or the reason, per element.
        """
        codes, uniques = _factorize(annotations)
        results = [self.classify(u) for u in uniques] + [(None, UNANNOTATED)]  # index -1: missing
        cls = np.array([r[0] for r in results], dtype=object)
        why = np.array([r[1] for r in results], dtype=object)
        return cls[codes], why[codes]

    def __repr__(self) -> str:
        kind = f"{len(self.codes)} CPA codes" if self.by_code else "exact strings"
        return f"LabelMapping({self.name!r}, {kind}, {len(self.strings)} string entries, classes={self.classes})"


def _factorize(values) -> tuple:
    """Integer codes (-1 for missing) and the distinct non-missing values, keeping strings exact."""
    arr = np.asarray(values, dtype=object)
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    # pandas treats None/NaN/NA as missing; the empty string is also "unannotated" here.
    uniques = list(uniques)
    empty = [i for i, u in enumerate(uniques) if is_missing(u)]
    if empty:
        codes = codes.copy()
        codes[np.isin(codes, empty)] = -1
    return codes, uniques


def load_cpa_mapping(path=None, overrides=None, name: Optional[str] = None) -> LabelMapping:
    """Read a CPA code -> class mapping (and optional exact-string overrides).

    Parameters
    ----------
    path : str or os.PathLike, optional
        CSV with columns ``cpa_code`` and ``class`` (``description`` optional). Codes are integers; leading zeros
        are allowed (``01010`` is 1010). Default: the shipped ``cpa_classes.csv`` (the seed paper's classes).
    overrides : str or os.PathLike, optional
        CSV with columns ``annotation`` and ``class``, keyed on the exact string; an empty class means the string
        is never a label.
    name : str, optional
        Name for reports; default ``"paper"`` for the shipped file, else the file name.

    Returns
    -------
    LabelMapping

    Raises
    ------
    InputError
        Missing columns, a code that is not an integer, an empty class, or one code given two classes.
    """
    source = package_file(CPA_CLASSES_FILE) if path is None else path
    df = _read_csv(source, ("cpa_code", "class"))
    codes, descriptions = {}, {}
    for line, (code_text, cls) in enumerate(zip(df["cpa_code"], df["class"]), start=2):
        code = _parse_code(code_text)
        if code is None:
            raise InputError(source, f"line {line}: cpa_code {code_text!r} is not a whole number")
        cls = cls.strip()
        if not cls:
            raise InputError(source, f"line {line}: empty class for CPA code {code} (remove the row to unmap it)")
        if code in codes and codes[code] != cls:
            raise InputError(source, f"line {line}: CPA code {code} is mapped to both {codes[code]!r} and {cls!r}")
        codes[code] = cls
    if "description" in df.columns:
        descriptions = {_parse_code(c): d for c, d in zip(df["cpa_code"], df["description"]) if d}
    strings = _read_overrides(overrides) if overrides is not None else {}
    if name is None:
        name = PAPER if path is None else os.path.basename(os.fspath(path))
    return LabelMapping(name, codes=codes, strings=strings, descriptions=descriptions)


def _read_overrides(path) -> dict:
    df = _read_csv(path, ("annotation", "class"))
    out = {}
    for line, (ann, cls) in enumerate(zip(df["annotation"], df["class"]), start=2):
        if ann == "":
            raise InputError(path, f"line {line}: empty annotation string")
        cls = cls.strip() or None
        if ann in out and out[ann] != cls:
            raise InputError(path, f"line {line}: annotation {ann!r} is mapped to both {out[ann]!r} and {cls!r}")
        out[ann] = cls
    return out


@functools.lru_cache(maxsize=None)
def capture24_dictionary(which: str = "public") -> pd.DataFrame:
    """A shipped CAPTURE-24 annotation-label dictionary as a DataFrame of exact strings.

    Parameters
    ----------
    which : {"public", "older"}
        ``"public"``: the 206 annotations of the public release (columns ``annotation, cpa_code,
        label:Willetts2018, label:WillettsSpecific2018, label:Walmsley2020, windows_10s``). ``"older"``: the
        165-row file (``annotation, label:Willetts2018, label:Doherty2018, label:Walmsley2020``).
    """
    files = {"public": PUBLIC_DICTIONARY_FILE, "older": OLDER_DICTIONARY_FILE}
    if which not in files:
        raise ValueError(f"which must be one of {sorted(files)}, not {which!r}")
    df = _read_csv(package_file(files[which]), ("annotation",))
    if "windows_10s" in df.columns:
        df["windows_10s"] = df["windows_10s"].astype(np.int64)
    return df


def load_label_scheme(name: str) -> LabelMapping:
    """One of the CAPTURE-24 annotation -> label schemes, keyed on the exact string.

    Parameters
    ----------
    name : {"Willetts2018", "WillettsSpecific2018", "Walmsley2020", "Doherty2018"}
        Willetts2018 and Walmsley2020 cover all 206 public annotations plus the 47 older-only strings;
        WillettsSpecific2018 the 206 public ones; Doherty2018 only the 165 strings of the older file (88 public
        annotations, 2.9 % of annotated time, then have no Doherty2018 label).

    Returns
    -------
    LabelMapping
        Strings outside the scheme get reason `NOT_IN_SCHEME`.
    """
    if name not in SCHEMES:
        raise ValueError(f"unknown label scheme {name!r}; known: {sorted(SCHEMES)} (or {PAPER!r} for CPA classes)")
    strings: dict = {}
    for file in SCHEMES[name]:
        df = capture24_dictionary("public" if file == PUBLIC_DICTIONARY_FILE else "older")
        for ann, cls in zip(df["annotation"], df[f"label:{name}"]):
            strings.setdefault(ann, cls)  # earlier files take precedence
    return LabelMapping(name, strings=strings)


@functools.lru_cache(maxsize=None)
def default_mapping() -> LabelMapping:
    """The seed paper's classes by CPA code (shipped ``cpa_classes.csv``), cached."""
    return load_cpa_mapping()


def get_mapping(spec=None, overrides=None) -> LabelMapping:
    """Resolve a mapping given by name, file or object.

    Parameters
    ----------
    spec : None, str, os.PathLike or LabelMapping
        None or ``"paper"``: the seed paper's classes. A scheme name (see `SCHEMES`). A CSV path: with a
        ``cpa_code`` column it is a code mapping, with an ``annotation`` column an exact-string scheme.
    overrides : str or os.PathLike, optional
        Exact-string overrides for a code mapping.
    """
    if isinstance(spec, LabelMapping):
        if overrides is not None:
            raise ValueError("overrides apply to a mapping read from a file, not to a LabelMapping object")
        return spec
    if spec is None or spec == PAPER:
        return default_mapping() if overrides is None else load_cpa_mapping(None, overrides)
    if isinstance(spec, str) and spec in SCHEMES:
        if overrides is not None:
            raise ValueError(f"overrides apply to CPA code mappings, not to the string scheme {spec!r}")
        return load_label_scheme(spec)
    if not os.path.isfile(spec):
        raise InputError(spec, f"neither a mapping file nor a known scheme ({PAPER!r}, {', '.join(SCHEMES)})")
    header = _read_csv(spec, ()).columns
    if "cpa_code" in header:
        return load_cpa_mapping(spec, overrides)
    if "annotation" in header and "class" in header:
        if overrides is not None:
            raise ValueError("overrides apply to CPA code mappings, not to an exact-string mapping file")
        strings = _read_overrides(spec)
        return LabelMapping(os.path.basename(os.fspath(spec)), strings=strings)
    raise InputError(spec, f"mapping file needs columns cpa_code,class or annotation,class; it has {list(header)}")


def cpa_class(code, mapping: Optional[LabelMapping] = None) -> Optional[str]:
    """The activity class of a CPA code, or None when the mapping does not list it.

    Parameters
    ----------
    code : int or str or None
        A CPA code (``9060``, ``"09060"``). None gives None.
    mapping : LabelMapping, optional
        A code mapping; default the seed paper's classes.

    Examples
    --------
    >>> cpa_class(17250)
    'Walking'
    >>> cpa_class(16015) is None
    True
    """
    mapping = default_mapping() if mapping is None else mapping
    if not mapping.by_code:
        raise ValueError(f"mapping {mapping.name!r} is keyed on annotation strings, not CPA codes")
    if code is None:
        return None
    if isinstance(code, str):
        parsed = _parse_code(code)
        if parsed is None:
            raise ValueError(f"CPA code {code!r} is not a whole number")
        code = parsed
    return mapping.codes.get(int(code))
