"""CPA mapping, annotation parser and CAPTURE-24 label schemes against the real dictionaries and the spec."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import data_dictionary as dd
from capture_pipeline.errors import InputError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DICT = SHARED / "data" / "capture24" / "annotation-label-dictionary.csv"
SPEC = SHARED / "spec" / "capture24.md"
PACKAGE = Path(dd.__file__).resolve().parent

# The seed paper's appendix table (spec section 6), plus CAPTURE-24's own driving code 16010 (section 6.1).
APPENDIX = {
    1010: "Bicycling", 6206: "Driving", 16010: "Driving", 13030: "Eating", 16016: "Riding Transport",
    12150: "Running", 9060: "Sitting", 7030: "Sleep", 17250: "Walking", 17161: "Walking", 17270: "Walking",
    17082: "Walking",
}


def read_exact(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def spec_appendix():
    """The 206 rows of the spec's Appendix A: (annotation, CPA, Willetts2018, WillettsSpecific2018, Walmsley, n)."""
    rows = []
    for line in SPEC.read_text(encoding="utf-8").split("\n"):
        m = re.match(r"^\| (\d+) \| `(.*)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \| ([^|]*) \| (\d+) \|", line)
        if m:
            rows.append((m.group(2), m.group(3).strip(), m.group(4).strip(), m.group(5).strip(),
                         m.group(6).strip(), int(m.group(7))))
    return rows


# --- shipped files ------------------------------------------------------------------------------------------


def test_older_dictionary_is_a_byte_copy_of_the_shared_file():
    shipped = (PACKAGE / "capture24_dictionary_older.csv").read_bytes()
    assert shipped == SHARED_DICT.read_bytes()
    # The hash the spec gives for the shared file (section 5.2).
    assert hashlib.sha256(shipped).hexdigest() == "dceceeb48557e6b65a5c5fb5cedd56ec3b3e82c49870784828844ba79ba31332"


def test_public_dictionary_matches_the_spec_appendix_row_for_row():
    appendix = spec_appendix()
    assert len(appendix) == 206
    public = dd.capture24_dictionary("public")
    assert len(public) == 206
    for row, (ann, cpa, w, ws, wal, n) in zip(public.itertuples(index=False), appendix):
        assert row.annotation == ann
        assert row.cpa_code == ("" if cpa == "–" else cpa)
        assert (row[2], row[3], row[4], row[5]) == (w, ws, wal, n)
    # Totals stated in the spec (sections 4 and 5.1).
    assert public["windows_10s"].sum() == 939_017
    assert public["annotation"].is_unique


def test_public_and_older_dictionaries_agree_where_they_overlap():
    public = dd.capture24_dictionary("public")
    older = dd.capture24_dictionary("older")
    both = public.merge(older, on="annotation", suffixes=("_pub", "_old"))
    assert len(both) == 118  # spec section 5.2
    assert (both["label:Willetts2018_pub"] == both["label:Willetts2018_old"]).all()
    assert (both["label:Walmsley2020_pub"] == both["label:Walmsley2020_old"]).all()


def test_shipped_cpa_classes_are_the_papers_appendix():
    table = read_exact(PACKAGE / "cpa_classes.csv")
    assert list(table.columns) == ["cpa_code", "class", "description"]
    assert dict(zip(table["cpa_code"].astype(int), table["class"])) == APPENDIX
    assert table["description"].str.len().min() > 0
    # Each description is the CAPTURE-24 text of that code (6206 has none in CAPTURE-24 and says so).
    parsed = {}
    for ann in dd.capture24_dictionary("public")["annotation"]:
        p = dd.parse_annotation(ann)
        parsed.setdefault(p.cpa_code, set()).add(p.description)
    for code, desc in zip(table["cpa_code"].astype(int), table["description"]):
        if code == 6206:
            assert "no CAPTURE-24 annotation" in desc
        else:
            assert desc in parsed[code]


def test_package_data_is_declared_for_installation():
    # setup.cfg ships data_dictionary/*.csv and *.json; every data file must match one of these patterns.
    data = [p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert sorted(data) == sorted(
        ["cpa_classes.csv", "capture24_dictionary_public.csv", "capture24_dictionary_older.csv", "sources.json"]
    )


# --- parse_annotation ---------------------------------------------------------------------------------------


def test_parse_examples_from_the_spec():
    p = dd.parse_annotation(
        "transportation;walking;17250 walking as the single means to a destination not to work or class;MET 3.0"
    )
    assert p.cpa_code == 17250
    assert p.met == 3.0
    assert p.tags == ("transportation", "walking")
    assert p.description == "walking as the single means to a destination not to work or class"

    p = dd.parse_annotation("7030 sleeping;MET 0.95")
    assert (p.cpa_code, p.description, p.met, p.tags) == (7030, "sleeping", 0.95, ())

    p = dd.parse_annotation("sitting;sitstand+activity;social;MET 1.8")
    assert (p.cpa_code, p.description, p.met, p.tags) == (None, None, 1.8, ("sitting", "sitstand+activity", "social"))


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, ""])
def test_parse_missing(missing):
    p = dd.parse_annotation(missing)
    assert (p.annotation, p.cpa_code, p.met, p.tags) == (None, None, None, ())


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError):
        dd.parse_annotation(9060)


def test_parse_keeps_the_exact_string_and_handles_double_spaces():
    s = "home activity;miscellaneous;sitting;9030  sitting desk work (with or without eating at the same time);MET 1.3"
    p = dd.parse_annotation(s)
    assert p.annotation == s
    assert p.cpa_code == 9030
    assert p.description == "sitting desk work (with or without eating at the same time)"


def test_parse_grammar_edge_cases():
    assert dd.parse_annotation("MET 2.0").met == 2.0
    assert dd.parse_annotation("foo").tags == ("foo",)
    assert dd.parse_annotation("foo").met is None
    # Six digits are not a CPA code (3-5 digits), and a code must be followed by whitespace.
    assert dd.parse_annotation("123456 x;MET 1").cpa_code is None
    assert dd.parse_annotation("1234;MET 1").cpa_code is None
    # The first code wins.
    assert dd.parse_annotation("a;1010 x;9060 y;MET 1").cpa_code == 1010
    assert dd.parse_annotation("a;1010 x;9060 y;MET 1").tags == ("a", "9060 y")


@pytest.mark.parametrize("source", ["shared-165", "public-206"])
def test_every_real_annotation_parses_like_the_spec_regexes(source):
    if source == "shared-165":
        annotations = read_exact(SHARED_DICT)["annotation"].tolist()
    else:
        annotations = [row[0] for row in spec_appendix()]
    code_re = re.compile(r"(?:^|;)\s*(\d{3,5})\s")
    met_re = re.compile(r";MET ([0-9.]+)$")
    for ann in annotations:
        p = dd.parse_annotation(ann)
        m = code_re.search(ann)
        assert p.cpa_code == (int(m.group(1)) if m else None), ann
        assert p.met == float(met_re.search(ann).group(1)), ann  # every real string has a MET item
        # Tags, the code item and MET rebuild the string exactly.
        items = list(p.tags)
        if p.cpa_code is not None:
            code_item = next(i for i in ann.split(";") if code_re.search(";" + i))
            items.insert(ann.split(";").index(code_item), code_item)
        assert ";".join(items + [ann.rsplit(";", 1)[1]]) == ann


def test_code_counts_in_the_real_dictionaries():
    # Spec section 4: shared file 79 rows with a code (47 distinct), 86 without; public 73 distinct, 49 without.
    older = [dd.parse_annotation(a).cpa_code for a in read_exact(SHARED_DICT)["annotation"]]
    assert sum(c is not None for c in older) == 79
    assert len({c for c in older if c is not None}) == 47
    public = [dd.parse_annotation(a).cpa_code for a in dd.capture24_dictionary("public")["annotation"]]
    assert sum(c is None for c in public) == 49
    assert len({c for c in public if c is not None}) == 73


# --- cpa_class and the paper mapping ------------------------------------------------------------------------


def test_appendix_codes_map_to_their_classes():
    for code, cls in APPENDIX.items():
        assert dd.cpa_class(code) == cls
        assert dd.cpa_class(str(code)) == cls
    assert dd.cpa_class("01010") == "Bicycling"  # Compendium-style 5-digit code
    assert dd.cpa_class(16015) is None  # car passenger: unmapped on purpose (spec 6.1)
    assert dd.cpa_class(11580) is None
    assert dd.cpa_class(None) is None
    with pytest.raises(ValueError):
        dd.cpa_class("walk")


def test_only_appendix_codes_are_labelled_in_the_real_dictionaries():
    mapping = dd.default_mapping()
    for ann in list(read_exact(SHARED_DICT)["annotation"]) + list(dd.capture24_dictionary("public")["annotation"]):
        code = dd.parse_annotation(ann).cpa_code
        cls, reason = mapping.classify(ann)
        if code is None:
            assert (cls, reason) == (None, dd.NO_CPA_CODE)
        elif code in APPENDIX:
            assert (cls, reason) == (APPENDIX[code], dd.LABELLED)
        else:
            assert (cls, reason) == (None, dd.CODE_NOT_MAPPED)
    assert mapping.classify(None) == (None, dd.UNANNOTATED)
    assert mapping.classify("never seen before;MET 1.0") == (None, dd.NO_CPA_CODE)


def test_paper_class_sizes_on_the_public_release():
    # 10-s windows per class (spec section 6 table): the mapping applied to the 206 public annotations.
    public = dd.capture24_dictionary("public")
    cls, _ = dd.default_mapping().classify_many(public["annotation"])
    sizes = public.assign(cls=cls).groupby("cls")["windows_10s"].sum().to_dict()
    assert sizes == {
        "Sleep": 356_766, "Sitting": 58_814, "Eating": 24_794, "Driving": 20_642, "Bicycling": 8_962,
        "Riding Transport": 8_294, "Running": 752, "Walking": 14_217 + 9_571 + 3_188 + 1_678,
    }


@pytest.mark.parametrize(
    "scheme, sizes",
    [
        ("Willetts2018", {"sit-stand": 359_865, "sleep": 356_766, "mixed": 118_488, "walking": 60_180,
                          "vehicle": 34_756, "bicycling": 8_962}),
        ("Walmsley2020", {"sedentary": 365_938, "sleep": 356_766, "light": 171_772, "moderate-vigorous": 44_541}),
        ("WillettsSpecific2018", {"sleep": 356_766, "sitting": 329_941, "household-chores": 64_550,
                                  "walking": 60_180, "mixed-activity": 38_632, "vehicle": 34_756,
                                  "standing": 29_924, "manual-work": 10_035, "bicycling": 8_962, "sports": 5_271}),
    ],
)
def test_scheme_class_sizes_on_the_public_release(scheme, sizes):
    # Spec section 5.1 (window counts of the CAPTURE-24 datasheet): every public string is in these schemes.
    public = dd.capture24_dictionary("public")
    cls, why = dd.load_label_scheme(scheme).classify_many(public["annotation"])
    assert (why == dd.LABELLED).all()
    assert public.assign(cls=cls).groupby("cls")["windows_10s"].sum().to_dict() == sizes


def test_schemes_cover_the_older_file_and_keep_its_labels():
    older = read_exact(SHARED_DICT)
    for scheme in ("Willetts2018", "Doherty2018", "Walmsley2020"):
        mapping = dd.load_label_scheme(scheme)
        cls, why = mapping.classify_many(older["annotation"])
        assert (why == dd.LABELLED).all()
        assert list(cls) == list(older[f"label:{scheme}"])
    # Doherty2018 exists only in the older file: the 88 public-only strings are outside it.
    public = dd.capture24_dictionary("public")
    _, why = dd.load_label_scheme("Doherty2018").classify_many(public["annotation"])
    assert (why == dd.NOT_IN_SCHEME).sum() == 88
    # Counts of rows per label in the older file (spec section 5.2).
    assert older["label:Willetts2018"].value_counts().to_dict() == {
        "mixed": 76, "sit-stand": 67, "walking": 15, "vehicle": 5, "sleep": 1, "bicycling": 1}


def test_double_space_variants_are_distinct_keys():
    a = "home activity;child/elderly/pet care;child care;5185 child care sitting/kneeling  occasional lifting;MET 2.0"
    b = "home activity;child/elderly/pet care;child care;5185 child care sitting/kneeling occasional lifting;MET 2.0"
    scheme = dd.load_label_scheme("Willetts2018")
    assert scheme.classify(a) == ("sit-stand", dd.LABELLED)  # spec section 4
    assert scheme.classify(b) == ("mixed", dd.LABELLED)
    assert scheme.classify(a.replace("  ", " ").replace("5185", "5186"))[1] == dd.NOT_IN_SCHEME
    assert dd.get_mapping("Willetts2018").classify(" " + b) == (None, dd.NOT_IN_SCHEME)


def test_classify_many_matches_classify():
    public = dd.capture24_dictionary("public")["annotation"].tolist()
    values = np.array(public[:20] + [None, "", float("nan")] + public[:5], dtype=object)
    cls, why = dd.default_mapping().classify_many(values)
    for v, c, w in zip(values, cls, why):
        assert dd.default_mapping().classify(v) == (c, w)
    assert list(why[20:23]) == [dd.UNANNOTATED] * 3


# --- user mapping files -------------------------------------------------------------------------------------


def test_user_code_mapping_and_overrides(tmp_path):
    codes = tmp_path / "mine.csv"
    codes.write_text("class,cpa_code,note\nSitting,09060,x\nOffice,11580,\nSitting,9060,dup same class\n")
    overrides = tmp_path / "over.csv"
    office = "occupation;office and administrative support;11580 office/computer work general;MET 1.5"
    reading = ("home activity;miscellaneous;sitting;9060 sitting/lying reading or without observable/"
               "identifiable activities;MET 1.3")
    overrides.write_text(f'annotation,class\n"{reading}",\n"7030 sleeping;MET 0.95",Sleep\n')
    m = dd.load_cpa_mapping(codes, overrides)
    assert m.name == "mine.csv"
    assert m.classes == ("Office", "Sitting", "Sleep")
    assert m.classify(office) == ("Office", dd.LABELLED)
    assert m.classify(reading) == (None, dd.EXCLUDED)  # empty class in the overrides: never a label
    assert m.classify("7030 sleeping;MET 0.95") == ("Sleep", dd.LABELLED)  # string override beats the code table
    assert m.classify("7030 sleeping;MET 1.0") == (None, dd.CODE_NOT_MAPPED)
    assert dd.cpa_class(9060, m) == "Sitting"
    assert dd.get_mapping(codes).codes == m.codes


def test_mapping_saved_by_a_spreadsheet(tmp_path):
    # Byte-order mark, CRLF line ends and a space after the comma in the header.
    f = tmp_path / "excel.csv"
    f.write_bytes("\ufeffcpa_code, class\r\n9060,Sitting\r\n7030,Sleep\r\n".encode("utf-8"))
    assert dd.load_cpa_mapping(f).codes == {9060: "Sitting", 7030: "Sleep"}


def test_user_string_mapping_file(tmp_path):
    f = tmp_path / "strings.csv"
    f.write_text('annotation,class\n"7030 sleeping;MET 0.95",rest\n')
    m = dd.get_mapping(f)
    assert not m.by_code
    assert m.classify("7030 sleeping;MET 0.95") == ("rest", dd.LABELLED)
    assert m.classify("walking;MET 3.0") == (None, dd.NOT_IN_SCHEME)
    with pytest.raises(ValueError):
        dd.cpa_class(7030, m)


@pytest.mark.parametrize(
    "content, message",
    [
        ("code,class\n9060,Sitting\n", "lacks column"),
        ("cpa_code,class\nabc,Sitting\n", "line 2: cpa_code 'abc' is not a whole number"),
        ("cpa_code,class\n9060,\n", "line 2: empty class"),
        ("cpa_code,class\n9060,Sitting\n9060,Reading\n", "line 3: CPA code 9060 is mapped to both"),
        ("", "not a readable CSV"),
    ],
)
def test_bad_mapping_files_name_the_file_and_the_problem(tmp_path, content, message):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(InputError) as err:
        dd.load_cpa_mapping(f)
    assert str(f) in str(err.value)
    assert message in str(err.value)


def test_get_mapping_errors(tmp_path):
    with pytest.raises(InputError, match="neither a mapping file nor a known scheme"):
        dd.get_mapping(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="unknown label scheme"):
        dd.load_label_scheme("Walmsley2021")
    f = tmp_path / "other.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="needs columns"):
        dd.get_mapping(f)


def test_training_dataset_accepts_pandas_na_labels():
    import pandas as pd

    from data_dictionary.splits import Split
    from data_dictionary.training import training_dataset

    table = pd.DataFrame({
        "participant": ["A", "A", "A", "B"],
        "f1": [0.0, 1.0, 2.0, 3.0],
        "label": pd.array(["Sleep", pd.NA, "Walking", "Sleep"], dtype="string"),
    })
    split = Split(labelled=("A",), unlabelled=("B",), test=())  # A's labels hold a pd.NA
    ds = training_dataset(table, split, classes=["Sleep", "Walking"])
    assert tuple(ds.classes) == ("Sleep", "Walking")
