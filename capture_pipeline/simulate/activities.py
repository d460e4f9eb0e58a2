"""The activity catalogue of the simulator: what each simulated activity is called and how it is annotated.

Annotation strings are copied verbatim (whitespace included) from the CAPTURE-24 annotation dictionaries: the
165-row ``annotation-label-dictionary.csv`` shipped with the older release and, for running (whose CPA code 12150
is missing from that file), the public 206-row dictionary (``spec/capture24.md`` appendix A). CAPTURE-24 is
published by the University of Oxford under CC BY 4.0. The package must not read ``../shared`` at run time, which
is why the strings live here.

Each activity has one or more annotation *variants* keyed by context (``"home"``, ``"work"``, ``"commute"``,
``"leisure"``), so that, as in the real data, walking to work and walking in the office carry different strings
and CPA codes. Non-wear has no annotation: the camera that produced CAPTURE-24's labels saw nothing then.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Annotation variants per activity and context. The first entry of each list is used when a context has no entry.
#: Weights are relative frequencies among the variants of one context.
_ANNOTATIONS: dict[str, dict[str, list[tuple[str, float]]]] = {
    "sleep": {"default": [("7030 sleeping;MET 0.95", 1.0)]},
    "sitting_desk": {
        "work": [
            ("occupation;office and administrative support;11580 office/computer work general;MET 1.5", 0.85),
            ("sitting;sitstand+lowactivity;screen;MET 1.0", 0.15),
        ],
        "home": [
            (
                "home activity;miscellaneous;sitting;11580 office work such as writing and typing "
                "(with or without eating at the same time);MET 1.5",
                0.7,
            ),
            ("home activity;miscellaneous;sitting;11580 office/computer work general;MET 1.5", 0.3),
        ],
    },
    "sitting_reading": {
        "home": [
            (
                "home activity;miscellaneous;sitting;9060 sitting/lying reading or without "
                "observable/identifiable activities;MET 1.3",
                0.8,
            ),
            ("sitting;sitstand+activity;social;MET 1.8", 0.2),
        ],
        "leisure": [
            (
                "leisure;miscellaneous;sitting;9060 (generic) sitting/lying reading or without "
                "observable/identifiable activities;MET 1.3",
                1.0,
            )
        ],
        "work": [
            ("occupation;interruption;sitting;9060 sitting without observable/identifiable activities;MET 1.3", 1.0)
        ],
    },
    "sitting_tv": {
        "home": [
            (
                "home activity;miscellaneous;sitting;7010 sitting/lying and watching television with TV on "
                "as the primary activity;MET 1.0",
                1.0,
            )
        ]
    },
    "eating": {
        "home": [("home activity;eating;13030 eating sitting alone or with someone;MET 1.5", 1.0)],
        "work": [("occupation;interruption;sitting;13030 eating sitting;MET 1.5", 1.0)],
        "leisure": [("leisure;eating;social;13030 eating sitting indoor/outdoor;MET 1.5", 1.0)],
    },
    "standing": {
        "home": [
            (
                "home activity;miscellaneous;standing;9050 standing talking in person/on the phone/computer "
                "(skype chatting) or using a mobile phone/smartphone/tablet;MET 1.8",
                0.5,
            ),
            ("home activity;miscellaneous;standing;9071 (generic) standing miscellaneous;MET 2.5", 0.5),
        ],
        "work": [
            (
                "occupation;interruption;standing;9050 standing talking in person/using a phone/smartphone/tablet;"
                "MET 1.8",
                0.6,
            ),
            (
                "occupation;interruption;standing;9070 standing reading or without observable/identifiable "
                "activities;MET 1.8",
                0.4,
            ),
        ],
        "commute": [("transportation;waiting;7040 standing in a line;MET 1.3", 1.0)],
        "leisure": [
            (
                "leisure;miscellaneous;standing;9050 standing talking in person/using a phone/smartphone/tablet;"
                "MET 1.8",
                1.0,
            )
        ],
    },
    "household": {
        "home": [
            (
                "home activity;household chores;preparing meals/cooking/washing dishes;5035 kitchen activity "
                "general cooking/washing/dishes/cleaning up;MET 3.3",
                0.7,
            ),
            (
                "home activity;miscellaneous;5025 (generic) multiple household tasks all at once including "
                "standing/lifting/sitting;MET 2.8",
                0.3,
            ),
        ]
    },
    "walking": {
        "home": [("home activity;miscellaneous;walking;17150 walking household without observable loads;MET 2.0", 1.0)],
        "work": [("occupation;interruption;11791 walking on job in office or lab area;MET 2.0", 1.0)],
        "commute": [
            ("transportation;walking;17270 walking as the single means to work or class (not from);MET 3.5", 0.5),
            (
                "transportation;walking;17161 walking not as the single means of transports e.g.from house to "
                "transports or vice versa/from car to places or vice versa/between transports;MET 2.5",
                0.5,
            ),
        ],
        "commute_home": [
            (
                "transportation;walking;17161 walking not as the single means of transports e.g.from house to "
                "transports or vice versa/from car to places or vice versa/between transports;MET 2.5",
                0.6,
            ),
            (
                "transportation;walking;17250 walking as the single means to a destination not to work or class;"
                "MET 3.0",
                0.4,
            ),
        ],
        "leisure": [
            (
                "transportation;walking;17250 walking as the single means to a destination not to work or class;"
                "MET 3.0",
                0.85,
            ),
            ("walking;MET 4.0", 0.15),
        ],
    },
    "running": {"default": [("leisure;sports;gymnasium and athletics;athletics;12150 running;MET 8.0", 1.0)]},
    "bicycling": {"default": [("transportation;private transportation;1010 bicycling;MET 4.0", 1.0)]},
    "driving": {
        "default": [
            ("transportation;private transportation;16010 driving automobile or light truck (not a semi);MET 2.5", 0.9),
            ("vehicle;MET 2.8", 0.1),
        ]
    },
    "bus_train": {
        "default": [
            ("transportation;public transportation;16016 riding in a bus or train;MET 1.3", 0.9),
            ("vehicle;MET 1.3", 0.1),
        ]
    },
    "nonwear": {"default": [("", 1.0)]},
}


@dataclass(frozen=True)
class Activity:
    """One simulated activity.

    Attributes
    ----------
    name : str
        Key used in schedules and truth files (e.g. ``"walking"``).
    code : int
        Small integer id used for per-sample truth arrays (index in `ACTIVITIES`).
    description : str
        Plain-words description, for tables.
    group : str
        Coarse group used in the sanity table and for class-ordering checks: ``sleep``, ``sitting``, ``standing``,
        ``walking``, ``running``, ``bicycling``, ``vehicle`` or ``nonwear``.
    paper_class : str or None
        The seed paper's class (Willetts et al. 2018 appendix) that the activity's main CPA code maps to, if any.
    """

    name: str
    code: int
    description: str
    group: str
    paper_class: str | None


_TABLE = [
    ("sleep", "night sleep, lying, rare posture changes", "sleep", "Sleep"),
    ("sitting_desk", "desk or computer work, typing", "sitting", None),
    ("sitting_reading", "sitting reading or using a phone", "sitting", "Sitting"),
    ("sitting_tv", "sitting watching television", "sitting", None),
    ("eating", "eating sitting, hand-to-mouth movements", "sitting", "Eating"),
    ("standing", "standing, talking, waiting", "standing", None),
    ("household", "kitchen and household tasks, standing with arm work", "standing", None),
    ("walking", "walking, arm swing at the person's cadence", "walking", "Walking"),
    ("running", "running", "running", "Running"),
    ("bicycling", "bicycling", "bicycling", "Bicycling"),
    ("driving", "driving a car, steering", "vehicle", "Driving"),
    ("bus_train", "riding a bus or train, vehicle vibration", "vehicle", "Riding Transport"),
    ("nonwear", "device taken off, still and flat", "nonwear", None),
]

#: All activities, in code order.
ACTIVITIES: tuple[Activity, ...] = tuple(
    Activity(name, code, desc, group, paper) for code, (name, desc, group, paper) in enumerate(_TABLE)
)
#: Activity by name.
BY_NAME: dict[str, Activity] = {a.name: a for a in ACTIVITIES}
#: Activity names in code order.
NAMES: tuple[str, ...] = tuple(a.name for a in ACTIVITIES)


def activity(name: str) -> Activity:
    """The `Activity` called ``name``; raises ValueError listing the known names otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown activity {name!r}; known: {', '.join(NAMES)}") from None


def annotation_variants(name: str, context: str = "default") -> list[tuple[str, float]]:
    """The ``(annotation, weight)`` variants of activity ``name`` in ``context``.

    Falls back to the ``"default"`` context, then to the first context listed for the activity.
    """
    table = _ANNOTATIONS[activity(name).name]
    if context in table:
        return list(table[context])
    if "default" in table:
        return list(table["default"])
    return list(next(iter(table.values())))


def choose_annotation(rng, name: str, context: str = "default") -> str:
    """Draw one annotation string for activity ``name`` in ``context`` with the variant weights."""
    variants = annotation_variants(name, context)
    weights = [w for _, w in variants]
    total = sum(weights)
    i = rng.choice(len(variants), p=[w / total for w in weights])
    return variants[i][0]


def all_annotations() -> list[str]:
    """Every distinct non-empty annotation string the simulator can write (for tests and documentation)."""
    out: list[str] = []
    for table in _ANNOTATIONS.values():
        for variants in table.values():
            for text, _ in variants:
                if text and text not in out:
                    out.append(text)
    return out
