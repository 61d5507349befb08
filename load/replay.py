"""Accidents of a raw BAAC directory for `load/run.py --replay`: each one's 28 features as a
/predict record (unknowns as null, which the API imputes) and its true outcome beside it.

The files are read and turned into features by the model's own code (model.baac_reader and
model.features.build_features, what training reads), so a replayed record is exactly what
training saw of that accident, before imputation. Accidents come in the order of their
accident number `Num_Acc`, the published files' own order (not chronological: a year
replayed in date order would move `mois` and `jour` far from training in every window).

Concept drift (`--concept-drift`): the true outcome of every accident in CONCEPT_DRIFT_SEGMENT
(a known speed limit `vma` of 80 km/h or more: rural roads, expressways and motorways) is
flipped, severe to not severe and back; accidents with an unknown `vma` keep theirs, and no
input changes. The model sees the inputs it was trained on (PSI and the estimated quality
stay calm) while the outcomes it is judged on have changed: only labels show it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

CONCEPT_DRIFT_FEATURE, CONCEPT_DRIFT_FROM = "vma", 80
CONCEPT_DRIFT_SEGMENT = f"{CONCEPT_DRIFT_FEATURE} >= {CONCEPT_DRIFT_FROM}"


@dataclass(frozen=True)
class Accident:
    """One replayed accident: its id, its /predict record and the outcome taken as true."""

    accident_id: str        # Num_Acc
    record: dict            # feature -> value, None where unknown
    severe: int             # 1 killed or hospitalised, 0 not (flipped if `flipped`)
    flipped: bool = False   # in the concept-drift segment: the outcome was changed


def in_drift_segment(record: dict) -> bool:
    """Whether an accident's record is in the concept-drift segment (vma known and >= 80)."""
    value = record.get(CONCEPT_DRIFT_FEATURE)
    return value is not None and value >= CONCEPT_DRIFT_FROM


def detect_year(raw_dir) -> int:
    """The one BAAC year whose four files are in ``raw_dir``; ValueError naming the choice
    when none or several are."""
    from model.baac_formats import SUPPORTED_YEARS
    from model.baac_reader import raw_files

    if not Path(raw_dir).is_dir():
        raise ValueError(f"--replay {raw_dir}: no such directory")
    years = []
    for year in SUPPORTED_YEARS:
        try:
            raw_files(raw_dir, year)
        except FileNotFoundError:
            continue
        years.append(year)
    if not years:
        raise ValueError(
            f"--replay {raw_dir}: no year {SUPPORTED_YEARS[0]}-{SUPPORTED_YEARS[-1]} has its "
            f"four BAAC files there (caracteristiques, lieux, vehicules, usagers; our names "
            f"<table>-<year>.csv or the published ones): `accident-api data synth --year Y "
            f"--seed S --dest {raw_dir}` or `accident-api data download --year Y --dest "
            f"{raw_dir}`")
    if len(years) > 1:
        raise ValueError(f"--replay {raw_dir}: files of {', '.join(map(str, years))}: choose "
                         f"one with --year")
    return years[0]


def read_accidents(raw_dir, year: int, concept_drift: bool = False) -> list[Accident]:
    """Every usable accident of ``year`` in ``raw_dir``, in Num_Acc order.

    Raises ValueError (a bad year, unreadable files, no usable accident) or
    FileNotFoundError (a table missing), each naming the file or the fix.
    """
    # pandas and the model's readers only for a replay: plain runs need neither
    from model.baac_reader import read_raw
    from model.feature_specs import FEATURES, SPECS_BY_NAME
    from model.features import build_features

    frame, target, _ = build_features(read_raw(raw_dir, year))
    if frame.empty:
        raise ValueError(f"--replay {raw_dir}: no usable accident in the BAAC {year} files "
                         f"(every accident lacks users or a known severity)")
    integer = [SPECS_BY_NAME[name].dtype == "int" for name in FEATURES]
    accidents = []
    for accident_id, values, severe in zip(frame.index, frame.to_numpy(), target.to_numpy()):
        record = {name: None if math.isnan(value) else int(value) if whole else float(value)
                  for name, value, whole in zip(FEATURES, values.tolist(), integer)}
        flipped = concept_drift and in_drift_segment(record)
        accidents.append(Accident(str(accident_id), record, int(severe) ^ flipped, flipped))
    return accidents
