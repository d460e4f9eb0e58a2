"""A simulated CAPTURE-24-like cohort: wrist accelerometer recordings with known activities.

Public API
----------
simulate_participant(pid, hours, seed, start=None, ...) -> (Recording, ParticipantTruth)
simulate_cohort(out_dir, participants, hours, seed, format="csv"|"cwa"|"both") -> pandas.DataFrame
write_participant(out_dir, recording, truth, format) -> dict of paths (for a participant made with a schedule)
ParticipantTruth.load(path) : the truth JSON of a written participant
class_table(xyz, activity_codes, fs) -> per-activity mean ENMO and dominant frequency
ACTIVITIES, NAMES : the activity catalogue (`capture_pipeline.simulate.activities`)

Annotation strings come from the CAPTURE-24 annotation dictionary (University of Oxford, CC BY 4.0).
"""

from .activities import ACTIVITIES, NAMES, all_annotations
from .cohort import simulate_cohort, write_participant
from .participant import ParticipantTruth, simulate_participant
from .sanity import class_table, group_table

__all__ = [
    "ACTIVITIES",
    "NAMES",
    "ParticipantTruth",
    "all_annotations",
    "class_table",
    "group_table",
    "simulate_cohort",
    "simulate_participant",
    "write_participant",
]
