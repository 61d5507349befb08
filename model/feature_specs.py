"""The 28 model features and their valid domain (FEATURE_SPECS), without pandas.

The serving path (accident_api/, monitoring/, model.serving, model.card) imports the feature
table from here, so a server does not import pandas (and its shared libraries) just to know
the feature names. `model.features` re-exports every name below and adds the pandas code
that turns raw BAAC tables into rows.
"""
from dataclasses import dataclass


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
    # The BAAC code for "not given" where it is not one of the feature's values (else None).
    # Training turns it into missing like any value outside the domain; the API accepts it as
    # an explicit unknown, like null, and imputes it (accident_api.validation).
    unknown_code: float | None = None


def _cat(name, description, source, codes, example, unknown_code=None):
    codes = tuple(codes)
    return FeatureSpec(name, "categorical", "int", description, source, codes, None, None,
                       example, unknown_code)


def _num(name, dtype, description, source, minimum, maximum, example, unknown_code=None):
    return FeatureSpec(name, "numeric", dtype, description, source, None, minimum, maximum,
                       example, unknown_code)


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

# Unknowns. BAAC writes -1 for "not given": the published coding lists "-1 – Non renseigné"
# for atm, col, circ, surf, situ, obsm, motor and secu1 (not for lum, agg, int, catr, catu,
# catv), and the files also hold -1 in vma (which has no coding), place and sexe. Where -1 is
# one of a feature's codes the model learned it as a category and it stays one; vma and the
# grouped atm have no -1, so for them -1 is the `unknown_code` (docs/api.md, "Unknown values").
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
         1, 130, 50, unknown_code=-1),
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
         "caracteristiques.atm (grouped)", (0, 1), 0, unknown_code=-1),
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
# An unknown code is never a value of its feature: training can only ever have made it missing.
assert all(s.unknown_code not in (s.codes or ()) and not
           (s.codes is None and s.minimum <= s.unknown_code <= s.maximum)
           for s in FEATURE_SPECS if s.unknown_code is not None)
