"""The 28 model features: their valid domain (FEATURE_SPECS), and raw BAAC tables -> one row each.

Recodings (documented here and in the README):
- target: most severe user of the accident; ``grav`` 2 (killed) or 3 (hospitalised) -> 1,
  1 (unhurt) or 4 (lightly injured) -> 0. Severity order killed > hospitalised > light > unhurt;
  ties keep the first user in file order. ``grav`` -1 is unknown; an accident with no known
  ``grav`` is unusable (counted, dropped).
- place, catu, sexe, secu1, victim_age: that user; catv, obsm, motor: that user's vehicle
  (joined on ``Num_Acc`` + ``id_vehicule``, kept as strings, mis-encoding included).
- atm grouped 0/1, catv grouped (CATV_GROUPS), Corsica ``2A``/``2B`` -> ``201``/``202`` in dep and
  in the prefix of com, hour = HH of ``hrmn``, victim_age = an - an_nais.
- any value outside a feature's domain (unknown code, age outside 0..120, vma outside 1..130,
  unparsable text) becomes missing; missing values are imputed later from the training split.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: meaning, BAAC source, and the valid domain the API validates against."""

    name: str
    kind: str  # "categorical" | "numeric"
    dtype: str  # "int" | "float"
    description: str
    source: str
    codes: tuple | None
    minimum: float | None
    maximum: float | None
    example: float


def _cat(name, description, source, codes, example):
    codes = tuple(codes)
    return FeatureSpec(name, "categorical", "int", description, source, codes, None, None, example)


def _num(name, dtype, description, source, minimum, maximum, example):
    return FeatureSpec(name, "numeric", dtype, description, source, None, minimum, maximum, example)


# catv (BAAC vehicle category) -> group; unlisted codes are "other/unknown" (0).
CATV_GROUPS = {
    1: (1, 50, 60, 80),  # bicycle, e-bike, personal mobility devices
    2: (2, 30, 35, 41),  # moped, scooter, quad, three-wheeler <= 50 cm3
    3: (4, 5, 6, 31, 32, 33, 34, 36, 42, 43),  # motorcycle, scooter, quad, three-wheeler > 50 cm3
    4: (3, 7, 8, 9),  # car (incl. caravan/trailer and microcar)
    5: (10, 11, 12),  # light utility vehicle 1.5-3.5 t
    6: (13, 14, 15, 16, 17, 18, 19),  # heavy goods vehicle, tractor unit
    7: (37, 38, 39, 40),  # bus, coach, train, tram
}
CATV_TO_GROUP = {code: group for group, codes in CATV_GROUPS.items() for code in codes}
# atm: 0 = normal, overcast or "other" (1, 8, 9); 1 = adverse (rain, snow, fog, wind, glare).
ATM_TO_GROUP = {1: 0, 8: 0, 9: 0, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1}
DEPARTMENTS = (*range(1, 20), *range(21, 96), 201, 202, *range(971, 979), 986, 987, 988)
SEVERITY_RANK = {2: 3, 3: 2, 4: 1, 1: 0}  # grav -> rank: killed > hospitalised > light > unhurt

FEATURE_SPECS = (
    _cat("place", "seat of the most severe user (1 driver ... 9, 10 pedestrian; -1 unknown)",
         "usagers.place", (-1, *range(1, 11)), 1),
    _cat("catu", "user category: 1 driver, 2 passenger, 3 pedestrian", "usagers.catu",
         (1, 2, 3), 1),
    _cat("sexe", "sex: 1 male, 2 female, -1 unknown", "usagers.sexe", (-1, 1, 2), 1),
    _cat("secu1", "first safety equipment: 0 none, 1 belt, 2 helmet, 3 child seat, 4 vest, "
         "5 airbag, 6 gloves, 7 gloves+airbag, 8 undetermined, 9 other, -1 unknown",
         "usagers.secu1",
         (-1, *range(0, 10)), 1),
    _num("year_acc", "int", "year of the accident", "caracteristiques.an", 2005, 2030, 2021),
    _num("victim_age", "float", "age of the most severe user: an - an_nais (bad ages -> missing)",
         "caracteristiques.an - usagers.an_nais", 0, 120, 35),
    _cat("catv", "vehicle group: 0 other/unknown, 1 bicycle/e-bike/EDP, 2 moped <= 50 cm3, "
         "3 motorcycle > 50 cm3, 4 car, 5 light utility, 6 heavy goods, 7 bus/coach/tram/train",
         "vehicules.catv (grouped)", range(0, 8), 4),
    _cat("obsm", "mobile obstacle hit: 0 none, 1 pedestrian, 2 vehicle, 4 rail vehicle, "
         "5 domestic animal, 6 wild animal, 9 other, -1 unknown", "vehicules.obsm",
         (-1, 0, 1, 2, 4, 5, 6, 9), 2),
    _cat("motor", "engine: 0 unknown, 1 hydrocarbon, 2 hybrid, 3 electric, 4 hydrogen, 5 human, "
         "6 other, -1 not given", "vehicules.motor", (-1, *range(0, 7)), 1),
    _cat("catr", "road category: 1 motorway, 2 national, 3 departmental, 4 communal, "
         "5 off network, 6 car park, 7 urban metropolis road, 9 other", "lieux.catr",
         (1, 2, 3, 4, 5, 6, 7, 9), 4),
    _cat("circ", "traffic regime: 1 one-way, 2 two-way, 3 separated, 4 variable lanes, -1 unknown",
         "lieux.circ", (-1, 1, 2, 3, 4), 2),
    _cat("surf", "surface: 1 normal, 2 wet, 3 puddles, 4 flooded, 5 snow, 6 mud, 7 icy, 8 oil, "
         "9 other, -1 unknown", "lieux.surf", (-1, *range(1, 10)), 1),
    _cat("situ", "situation: 0 none, 1 roadway, 2 hard shoulder, 3 verge, 4 pavement, "
         "5 cycle path, 6 special lane, 8 other, -1 unknown", "lieux.situ",
         (-1, 0, 1, 2, 3, 4, 5, 6, 8), 1),
    _num("vma", "int", "speed limit in km/h (-1 or outside 1..130 -> missing)", "lieux.vma",
         1, 130, 50),
    _num("jour", "int", "day of the month", "caracteristiques.jour", 1, 31, 15),
    _num("mois", "int", "month", "caracteristiques.mois", 1, 12, 6),
    _cat("lum", "light: 1 daylight, 2 dusk/dawn, 3 night unlit, 4 night lights off, 5 night lit",
         "caracteristiques.lum", (1, 2, 3, 4, 5), 1),
    _cat("dep", "department (INSEE); Corsica 2A -> 201, 2B -> 202", "caracteristiques.dep",
         DEPARTMENTS, 75),
    _num("com", "int", "commune (INSEE code as a number; Corsica 2A/2B prefix -> 201/202)",
         "caracteristiques.com", 1001, 202999, 75056),
    _cat("agg_", "1 outside built-up area, 2 inside", "caracteristiques.agg", (1, 2), 2),
    _cat("int_", "intersection: 1 none, 2 X, 3 T, 4 Y, 5 more than 4 branches, 6 roundabout, "
         "7 square, 8 level crossing, 9 other", "caracteristiques.int", range(1, 10), 1),
    _cat("atm", "weather grouped: 0 normal/overcast/other, 1 adverse (rain, snow, fog, wind, "
         "glare)",
         "caracteristiques.atm (grouped)", (0, 1), 0),
    _cat("col", "collision: 1 frontal, 2 rear, 3 side, 4 chain, 5 multiple, 6 other, 7 none, "
         "-1 unknown",
         "caracteristiques.col", (-1, *range(1, 8)), 3),
    _num("lat", "float", "latitude (WGS84, decimal degrees)", "caracteristiques.lat",
         -90.0, 90.0, 48.85),
    _num("long", "float", "longitude (WGS84, decimal degrees)", "caracteristiques.long",
         -180.0, 180.0, 2.35),
    _num("hour", "int", "hour of the accident (HH of hrmn)", "caracteristiques.hrmn", 0, 23, 17),
    _num("nb_victim", "int", "number of users involved in the accident (all gravities)",
         "usagers (count per Num_Acc)", 1, 100, 2),
    _num("nb_vehicules", "int", "number of vehicles involved in the accident",
         "vehicules (count per Num_Acc)", 1, 100, 2),
)
FEATURES = tuple(spec.name for spec in FEATURE_SPECS)
SPECS_BY_NAME = {spec.name: spec for spec in FEATURE_SPECS}


def to_number(column: pd.Series) -> pd.Series:
    """Parse BAAC text (quoted, " -1", comma decimals, "N/A", "") into float; unparsable -> NaN."""
    text = column.astype("string").str.strip().str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def corsica_code(column: pd.Series) -> pd.Series:
    """Department/commune codes as numbers: a 2A/2B prefix becomes 201/202 (2A004 -> 201004)."""
    text = column.astype("string").str.strip()
    text = text.str.replace(r"^2A", "201", regex=True).str.replace(r"^2B", "202", regex=True)
    return to_number(text)


def hour_of(hrmn: pd.Series) -> pd.Series:
    """Hour from ``HH:MM`` (2019+) or ``HHMM`` (older years)."""
    text = hrmn.astype("string").str.strip()
    hh = text.str.split(":").str[0].where(text.str.contains(":"), text.str.zfill(4).str[:2])
    return to_number(hh)


def _most_severe_users(users: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One user per accident (highest severity, first in file order) and how many had none."""
    rank = to_number(users["grav"]).map(SEVERITY_RANK)
    known = users.assign(_rank=rank).dropna(subset=["_rank"])
    ordered = known.sort_values("_rank", ascending=False, kind="stable")
    chosen = ordered.drop_duplicates("Num_Acc", keep="first").set_index("Num_Acc").sort_index()
    no_grav = users["Num_Acc"].nunique() - len(chosen)
    return chosen, no_grav


def _restrict_to_domain(frame: pd.DataFrame) -> dict:
    """Values outside each feature's domain become NaN; return how many per feature."""
    out_of_domain = {}
    for spec in FEATURE_SPECS:
        col = frame[spec.name]
        if spec.kind == "categorical":
            bad = col.notna() & ~col.isin(spec.codes)
        else:
            bad = col.notna() & ~col.between(spec.minimum, spec.maximum)
        frame.loc[bad, spec.name] = np.nan
        out_of_domain[spec.name] = int(bad.sum())
    return out_of_domain


def build_features(tables: dict) -> tuple[pd.DataFrame, pd.Series, dict]:
    """Turn the four raw BAAC tables into one row per accident, the 28 features and the target.

    Parameters
    ----------
    tables : dict
        ``caracteristiques``, ``lieux``, ``vehicules``, ``usagers`` DataFrames of raw text
        (as returned by :func:`model.baac.read_raw`).

    Returns
    -------
    X : DataFrame
        One row per usable accident (index ``Num_Acc``), columns FEATURES, float64 with NaN for
        missing or out-of-domain values (imputed later, on the training split only).
    y : Series
        1 if the most severe user was killed or hospitalised, else 0.
    report : dict
        Row counts in/out and why rows were dropped or values set missing.
    """
    carac = tables["caracteristiques"].drop_duplicates("Num_Acc").set_index("Num_Acc")
    lieux = tables["lieux"].drop_duplicates("Num_Acc").set_index("Num_Acc")
    vehicles = tables["vehicules"].drop_duplicates(["Num_Acc", "id_vehicule"])
    orphan_users = ~tables["usagers"]["Num_Acc"].isin(carac.index)
    users = tables["usagers"][~orphan_users]
    chosen, no_grav = _most_severe_users(users)
    vehicle_of = chosen.reset_index().merge(
        vehicles, on=["Num_Acc", "id_vehicule"], how="left", suffixes=("", "_veh"), indicator=True
    ).set_index("Num_Acc")
    has_vehicle = vehicle_of["_merge"] == "both"
    place = lieux.reindex(chosen.index)
    frame = pd.DataFrame(index=chosen.index)
    for name in ("place", "catu", "sexe", "secu1"):
        frame[name] = to_number(chosen[name])
    frame["catv"] = to_number(vehicle_of["catv"]).map(CATV_TO_GROUP).fillna(0).where(has_vehicle)
    frame["obsm"] = to_number(vehicle_of["obsm"])
    frame["motor"] = to_number(vehicle_of["motor"])
    for name in ("catr", "circ", "surf", "situ", "vma"):
        frame[name] = to_number(place[name])
    _add_accident_columns(frame, carac.loc[chosen.index])
    frame["victim_age"] = frame["year_acc"] - to_number(chosen["an_nais"])
    frame["nb_victim"] = users.groupby("Num_Acc").size().reindex(frame.index)
    frame["nb_vehicules"] = vehicles.groupby("Num_Acc").size().reindex(frame.index)
    frame = frame[list(FEATURES)].astype("float64")
    out_of_domain = _restrict_to_domain(frame)
    target = (chosen["_rank"] >= 2).astype("int64").rename("severe")
    report = {
        "accidents_in": int(len(carac)),
        "users_in": int(len(tables["usagers"])),
        "vehicles_in": int(len(tables["vehicules"])),
        "orphan_users": int(orphan_users.sum()),
        "dropped_no_users": int((~carac.index.isin(users["Num_Acc"])).sum()),
        "dropped_unknown_severity": int(no_grav),
        "users_without_vehicle": int((~has_vehicle).sum()),
        "accidents_without_lieux": int((~chosen.index.isin(lieux.index)).sum()),
        "out_of_domain": out_of_domain,
        "missing": {k: int(v) for k, v in frame.isna().sum().items()},
        "rows_out": int(len(frame)),
    }
    return frame, target, report


def _add_accident_columns(frame: pd.DataFrame, acc: pd.DataFrame) -> None:
    """Accident-level features (caracteristiques) with their recodings, added to ``frame``."""
    frame["year_acc"] = to_number(acc["an"])
    for name in ("jour", "mois", "lum", "col", "lat", "long"):
        frame[name] = to_number(acc[name])
    frame["dep"] = corsica_code(acc["dep"])
    frame["com"] = corsica_code(acc["com"])
    frame["agg_"] = to_number(acc["agg"])
    frame["int_"] = to_number(acc["int"])
    frame["atm"] = to_number(acc["atm"]).map(ATM_TO_GROUP)
    frame["hour"] = hour_of(acc["hrmn"])
