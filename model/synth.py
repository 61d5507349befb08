"""Synthetic BAAC raw files of any year 2019-2024, in that year's published format.

The generator is the offline default and the test data. Marginals are plausible (shaped on the
public 2021 data), keys are consistent across the four files (``Num_Acc``, ``id_vehicule`` with
the published mis-encoded thousands separator, ``num_veh``), and each user's severity depends on
real risk factors (speed limit, rural road, darkness, pedestrian or two-wheeler, missing safety
equipment, age, frontal collision, heavy opponent) plus noise, so a model has something to learn.
Synthetic ``Num_Acc`` are ``<year>9xxxxxxx`` (``20219xxxxxxx`` for 2021): never the range of
real accidents (``<year>000xxxxx``). ``write`` puts the rows in the year's published format
(``model.baac_formats.PUBLISHED``: file names, key column name, extra columns, encoding and
separator), so every year's reading path can be tested offline.
"""
import csv
from pathlib import Path

import numpy as np
import pandas as pd

from model.baac_formats import HEADERS, PUBLISHED, check_year  # noqa: F401  (synth.HEADERS)
from model.features import CATV_TO_GROUP

# fmt: off
YEAR = 2021  # the default year
ID_VEHICULE_BASE = 900001
ID_USAGER_BASE = 1200001
# Department -> weight; overseas and Corsica included so the recodings are exercised.
DEPS = {**{f"{d:02d}": 1.0 for d in range(1, 96) if d != 20}, "13": 6.0, "69": 5.0, "75": 7.0,
        "93": 5.0, "92": 4.0, "94": 4.0, "33": 4.0, "06": 4.0, "2A": 0.6, "2B": 0.6,
        "971": 0.8, "972": 0.6, "973": 0.3, "974": 1.0, "976": 0.3}
OVERSEAS_CENTRES = {"971": (16.2, -61.5), "972": (14.6, -61.0), "973": (4.9, -52.3),
                    "974": (-21.1, 55.5), "976": (-12.8, 45.1), "2A": (41.9, 8.9),
                    "2B": (42.5, 9.3)}
STREETS = ("RUE DE LA GARE", "AVENUE DE LA REPUBLIQUE", "ROUTE NATIONALE", "CHEMIN DES VIGNES",
           "BOULEVARD VICTOR HUGO", "RUE JEAN JAURES", "PLACE DE L'EGLISE", "AUTOROUTE A7",
           '"LES PINS" RESIDENCE')  # a quote inside a field is doubled, as published
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 5, 6, 5, 5, 5, 6, 5, 6, 7, 8, 9, 9, 7, 5, 3, 2, 2]
MONTH_WEIGHTS = [7, 7, 8, 8, 9, 9, 9, 8, 9, 9, 9, 8]
# Marginal distributions (value -> probability), shaped on the published 2021 files.
P = {
    "catv": {7: .62, 10: .06, 1: .05, 33: .05, 30: .04, 2: .03, 32: .03, 31: .02, 50: .02,
             99: .01, 34: .01, 15: .01, 14: .01, 3: .01, 80: .01, 37: .005, 38: .005, 0: .01,
             17: .01},
    "lum_night": {3: .3, 4: .05, 5: .65}, "lum_dusk": {1: .5, 2: .4, 5: .1},
    "agg": {1: .35, 2: .65},
    "int": {1: .62, 2: .12, 3: .1, 4: .02, 5: .01, 6: .06, 7: .01, 8: .01, 9: .05},
    "atm": {1: .78, 2: .11, 3: .03, 4: .005, 5: .01, 6: .005, 7: .015, 8: .04, 9: .01, -1: .005},
    "catr_rural": {3: .6, 1: .13, 2: .1, 4: .12, 9: .03, 6: .01, 7: .01},
    "catr_urban": {4: .6, 3: .15, 7: .15, 2: .03, 1: .02, 9: .03, 6: .02},
    "vma_motorway": {130: .7, 110: .25, 90: .05},
    "vma_rural": {80: .55, 90: .15, 70: .15, 50: .1, 110: .05},
    "vma_urban": {50: .7, 30: .18, 70: .06, 20: .02, 80: .04},
    "v1": {0: .83, -1: .17}, "v2": {"N/A": .95, "D": .03, "A": .02},
    "circ": {2: .65, 1: .15, 3: .12, -1: .06, 4: .02},
    "nbv_motorway": {2: .5, 3: .4, 4: .1}, "nbv": {2: .7, 1: .12, 4: .1, 0: .04, -1: .04},
    "vosp": {0: .86, 1: .03, 2: .04, 3: .05, -1: .02}, "prof": {1: .81, 2: .17, 3: .01, 4: .01},
    "pr": {"(1)": .5, "0": .2, "1": .1, "12": .1, "4": .1},
    "pr1": {"(1)": .5, "0": .2, "500": .15, "100": .15},
    "plan": {1: .8, 2: .09, 3: .09, 4: .01, -1: .01},
    "larrout": {" -1": .95, "4": .02, "5,5": .01, "6": .01, "3,5": .01},
    "surf_wet": {2: .9, 3: .05, 1: .05}, "surf": {1: .92, 2: .05, 7: .01, 9: .01, -1: .01},
    "infra": {0: .8, 5: .07, 9: .05, 3: .02, 6: .02, 2: .02, -1: .02},
    "situ": {1: .85, 3: .05, 8: .04, 4: .03, 6: .02, 5: .01},
    "nveh": {1: .28, 2: .6, 3: .09, 4: .03},
    "obsm_single": {0: .8, 6: .1, 9: .05, 5: .05}, "obsm_multi": {2: .95, 0: .03, -1: .02},
    "motor": {1: .85, 2: .04, 3: .03, 0: .05, -1: .02, 6: .01},
    "senc": {1: .43, 2: .29, 3: .2, 0: .08},
    "obs_single": {0: .4, 1: .1, 13: .15, 2: .1, 3: .1, 6: .15},
    "choc": {1: .38, 3: .15, 2: .13, 4: .09, 8: .07, 0: .06, 7: .05, 5: .04, 6: .03},
    "manv": {1: .42, 15: .09, 2: .09, 0: .06, 13: .05, 26: .04, 9: .04, 19: .03, 16: .03, 17: .15},
    "passengers_car": {0: .72, 1: .18, 2: .06, 3: .04}, "passengers_moto": {0: .9, 1: .1},
    "pedestrians": {1: .9, 2: .1},
    "secu1_pedestrian": {0: .88, 8: .1, -1: .02}, "secu1_bicycle": {0: .5, 2: .35, 8: .1, 4: .05},
    "secu1_two_wheel": {2: .86, 6: .04, 0: .04, 8: .04, -1: .02},
    "secu1_car": {1: .84, 0: .04, 8: .08, -1: .03, 3: .01},
    "place_passenger": {2: .6, 3: .15, 4: .15, 5: .05, 7: .05},
    "sexe_driver": {1: .72, 2: .26, -1: .02}, "sexe_other": {1: .5, 2: .47, -1: .03},
    "trajet": {5: .37, 0: .29, 1: .1, 9: .09, 4: .07, 3: .04, -1: .03, 2: .01},
    "secu2": {-1: .42, 0: .37, 8: .12, 6: .06, 5: .03},
    "locp_pedestrian": {3: .35, 2: .2, 4: .2, 1: .15, 9: .1}, "locp": {-1: .65, 0: .35},
    "actp_pedestrian": {"3": .8, "1": .06, "B": .06, "2": .04, "9": .04},
    "actp": {" -1": .65, "0": .35}, "etatp_pedestrian": {1: .75, 2: .2, 3: .05},
    "col_multi": {1: .12, 2: .2, 3: .35, 4: .05, 5: .05, 6: .22, -1: .01},
    "col_single": {7: .7, 6: .3},
}
# fmt: on


def _pick(rng, choices: dict, size) -> np.ndarray:
    """Draw ``size`` keys of ``choices`` with probabilities proportional to its values."""
    keys = list(choices)
    weights = np.asarray(list(choices.values()), dtype="float64")
    values = np.asarray(keys, dtype=object if isinstance(keys[0], str) else None)
    return values[rng.choice(len(keys), size=size, p=weights / weights.sum())]


def _centre(dep: str) -> tuple:
    """A fixed pseudo-centre per department: overseas/Corsica real, mainland spread over France."""
    if dep in OVERSEAS_CENTRES:
        return OVERSEAS_CENTRES[dep]
    return 42.5 + (int(dep) * 37 % 85) / 10.0, -4.3 + (int(dep) * 53 % 120) / 10.0


def _accidents(rng, n: int) -> pd.DataFrame:
    """Accident-level facts (caracteristiques), numeric where the model reads them."""
    mois = rng.choice(np.arange(1, 13), n, p=np.array(MONTH_WEIGHTS) / sum(MONTH_WEIGHTS))
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[mois - 1]
    hour = rng.choice(24, n, p=np.array(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS))
    night = (hour < 6) | (hour >= 21)
    dusk = np.isin(hour, (6, 7, 19, 20))
    lum = np.where(
        night, _pick(rng, P["lum_night"], n), np.where(dusk, _pick(rng, P["lum_dusk"], n), 1)
    )
    dep = _pick(rng, DEPS, n)
    frame = pd.DataFrame({
        "jour": (rng.random(n) * days).astype(int) + 1, "mois": mois, "hour": hour,
        "minute": rng.choice(np.arange(0, 60, 5), n), "lum": lum, "dep": dep,
        "agg": _pick(rng, P["agg"], n), "int": _pick(rng, P["int"], n),
        "atm": _pick(rng, P["atm"], n),
    })
    centre = np.array([_centre(d) for d in dep])
    frame["lat"] = centre[:, 0] + rng.normal(0, 0.25, n)
    frame["long"] = centre[:, 1] + rng.normal(0, 0.35, n)
    frame["com"] = [f"{d}{c:03d}" if len(d) == 2 else f"{d}{c % 100:02d}"
                    for d, c in zip(dep, rng.integers(1, 400, n))]
    return frame


def _lieux(rng, acc: pd.DataFrame) -> pd.DataFrame:
    """Road facts; the speed limit follows road category and built-up area."""
    n = len(acc)
    rural = acc["agg"].to_numpy() == 1
    catr = np.where(rural, _pick(rng, P["catr_rural"], n), _pick(rng, P["catr_urban"], n))
    vma = np.where(catr == 1, _pick(rng, P["vma_motorway"], n),
                   np.where(rural, _pick(rng, P["vma_rural"], n), _pick(rng, P["vma_urban"], n)))
    vma = np.where(rng.random(n) < .02, -1, vma)
    wet = np.isin(acc["atm"].to_numpy(), (2, 3))
    return pd.DataFrame({
        "catr": catr, "voie": np.where(catr == 4, _pick(rng, dict.fromkeys(STREETS, 1), n),
                                       rng.integers(1, 999, n).astype(str)),
        "v1": _pick(rng, P["v1"], n), "v2": _pick(rng, P["v2"], n),
        "circ": np.where(catr == 1, 3, _pick(rng, P["circ"], n)),
        "nbv": np.where(catr == 1, _pick(rng, P["nbv_motorway"], n), _pick(rng, P["nbv"], n)),
        "vosp": _pick(rng, P["vosp"], n), "prof": _pick(rng, P["prof"], n),
        "pr": _pick(rng, P["pr"], n), "pr1": _pick(rng, P["pr1"], n),
        "plan": _pick(rng, P["plan"], n), "lartpc": "", "larrout": _pick(rng, P["larrout"], n),
        "surf": np.where(wet, _pick(rng, P["surf_wet"], n), _pick(rng, P["surf"], n)),
        "infra": _pick(rng, P["infra"], n), "situ": _pick(rng, P["situ"], n), "vma": vma,
    })


def _vehicles(rng, acc: pd.DataFrame) -> pd.DataFrame:
    """1-4 vehicles per accident; single-vehicle accidents often involve a pedestrian."""
    nveh = _pick(rng, P["nveh"], len(acc))
    acc_idx = np.repeat(np.arange(len(acc)), nveh)
    m = len(acc_idx)
    pos = np.arange(m) - np.repeat(np.cumsum(nveh) - nveh, nveh)
    catv = _pick(rng, P["catv"], m)
    group = pd.Series(catv).map(CATV_TO_GROUP).fillna(0).to_numpy(int)
    single = nveh[acc_idx] == 1
    hits_pedestrian = single & (rng.random(m) < .4)
    obsm = np.where(hits_pedestrian, 1, np.where(single, _pick(rng, P["obsm_single"], m),
                                                 _pick(rng, P["obsm_multi"], m)))
    motor = np.where(np.isin(catv, (1, 60)), 5,
                     np.where(np.isin(catv, (50, 80)), 3, _pick(rng, P["motor"], m)))
    keys = ID_VEHICULE_BASE + np.arange(m)
    return pd.DataFrame({
        "acc_idx": acc_idx, "num_veh": [chr(65 + p) + "01" for p in pos],
        "id_vehicule": _published_ids(keys),
        "senc": _pick(rng, P["senc"], m), "catv": catv, "group": group,
        "obs": np.where(single & ~hits_pedestrian, _pick(rng, P["obs_single"], m), 0),
        "obsm": obsm, "choc": _pick(rng, P["choc"], m), "manv": _pick(rng, P["manv"], m),
        "motor": motor, "occutc": np.where(group == 7, rng.integers(1, 30, m).astype(str), ""),
    })


def _users(rng, acc: pd.DataFrame, veh: pd.DataFrame) -> pd.DataFrame:
    """A driver per vehicle, some passengers, and the pedestrians hit (attached to that vehicle)."""
    group, nv = veh["group"].to_numpy(), len(veh)
    passengers = np.where(np.isin(group, (4, 5)), _pick(rng, P["passengers_car"], nv),
                          np.where(group == 3, _pick(rng, P["passengers_moto"], nv), 0))
    pedestrians = np.where(veh["obsm"].to_numpy() == 1, _pick(rng, P["pedestrians"], nv), 0)
    veh_idx = np.concatenate([np.arange(nv), np.repeat(np.arange(nv), passengers),
                              np.repeat(np.arange(nv), pedestrians)])
    catu = np.concatenate([np.ones(nv, int), np.full(passengers.sum(), 2),
                           np.full(pedestrians.sum(), 3)])
    order = np.lexsort((catu, veh_idx))
    veh_idx, catu = veh_idx[order], catu[order]
    n = len(catu)
    ped, vgroup = catu == 3, group[veh_idx]
    age = np.where(catu == 1, rng.normal(42, 16, n),
                   np.where(ped, rng.normal(45, 25, n), rng.normal(33, 22, n)))
    age = np.clip(np.round(age), np.where(catu == 1, 14, 0), 98).astype(int)
    two_wheel = np.isin(vgroup, (1, 2, 3))
    secu1 = np.where(ped, _pick(rng, P["secu1_pedestrian"], n),
                     np.where(vgroup == 1, _pick(rng, P["secu1_bicycle"], n),
                              np.where(two_wheel, _pick(rng, P["secu1_two_wheel"], n),
                                       _pick(rng, P["secu1_car"], n))))
    place = np.where(ped, 10, np.where(catu == 1, 1, _pick(rng, P["place_passenger"], n)))
    sexe = np.where(catu == 1, _pick(rng, P["sexe_driver"], n), _pick(rng, P["sexe_other"], n))
    return pd.DataFrame({
        "veh_idx": veh_idx, "acc_idx": veh["acc_idx"].to_numpy()[veh_idx], "catu": catu,
        "place": place, "age": age, "secu1": secu1, "sexe": sexe,
        "trajet": _pick(rng, P["trajet"], n),
        "secu2": np.where(ped, -1, _pick(rng, P["secu2"], n)),
        "locp": np.where(ped, _pick(rng, P["locp_pedestrian"], n), _pick(rng, P["locp"], n)),
        "actp": np.where(ped, _pick(rng, P["actp_pedestrian"], n), _pick(rng, P["actp"], n)),
        "etatp": np.where(ped, _pick(rng, P["etatp_pedestrian"], n), -1),
    })


def _severity(rng, acc, places, veh, users) -> np.ndarray:
    """BAAC ``grav`` per user (1 unhurt, 2 killed, 3 hospitalised, 4 light): risks + noise."""
    a = users["acc_idx"].to_numpy()
    catu = users["catu"].to_numpy()
    ped = catu == 3
    group = veh["group"].to_numpy()[users["veh_idx"].to_numpy()]
    heaviest = veh.groupby("acc_idx")["group"].max().to_numpy()[a]
    vma = places["vma"].to_numpy()[a]
    vma = np.where(vma > 0, vma, 50)
    lum, col = acc["lum"].to_numpy()[a], acc["col"].to_numpy()[a]
    age, secu1 = users["age"].to_numpy(), users["secu1"].to_numpy()
    exposed = (1.5 * np.isin(group, (2, 3)) + 1.1 * (group == 1) - 0.9 * np.isin(group, (6, 7))
               + 1.0 * (secu1 == 0))  # occupants only; pedestrians get their own term
    logit = (-3.0 + 0.03 * (vma - 50) + 0.6 * (acc["agg"].to_numpy()[a] == 1)
             + 0.5 * np.isin(lum, (3, 4)) + 2.0 * ped + (~ped) * exposed
             + 0.04 * np.clip(age - 55, 0, None) + 0.3 * (age < 25) + 0.8 * (col == 1)
             + 0.8 * ((heaviest == 6) & (group != 6)) + 0.4 * (acc["hour"].to_numpy()[a] < 6)
             - 0.3 * (catu == 2)
             + rng.normal(0, 0.6, len(acc))[a] + rng.normal(0, 0.4, len(a)))
    severe = rng.random(len(a)) < 1 / (1 + np.exp(-logit))
    killed = rng.random(len(a)) < 1 / (1 + np.exp(-(-2.3 + 0.03 * (vma - 50) + 0.6 * ped)))
    light = rng.random(len(a)) < np.where(ped | np.isin(group, (1, 2, 3)), 0.8, 0.4)
    grav = np.where(severe, np.where(killed, 2, 3), np.where(light, 4, 1))
    return np.where(rng.random(len(a)) < 0.001, -1, grav)  # a few unknown gravities, as published


def _published_ids(keys) -> list:
    """Ids as published: "Â\\xa0" (a UTF-8 no-break space read as Latin-1) between thousands."""
    return [f"{k // 1000}\u00c2\u00a0{k % 1000:03d}" for k in keys]


def _text(values) -> list:
    """BAAC text of integers: negatives carry a leading space (``" -1"``)."""
    return [f" {v}" if isinstance(v, (int, np.integer)) and v < 0 else str(v) for v in values]


def _decimal(values) -> list:
    """BAAC decimals: 10 places, comma separator, leading space on negatives (``" -0,96..."``)."""
    return [(" " if v < 0 else "") + f"{v:.10f}".replace(".", ",") for v in values]


def _caracteristiques(rng, acc: pd.DataFrame, num_acc: np.ndarray, year: int) -> pd.DataFrame:
    """The caracteristiques table as published text."""
    n = len(acc)
    streets = _pick(rng, dict.fromkeys(STREETS, 1), n)
    return pd.DataFrame({
        "Num_Acc": num_acc, "jour": _text(acc["jour"]), "mois": [f"{m:02d}" for m in acc["mois"]],
        "an": str(year), "hrmn": [f"{h:02d}:{m:02d}" for h, m in zip(acc["hour"], acc["minute"])],
        **{c: _text(acc[c]) for c in ("lum", "dep", "com", "agg", "int", "atm", "col")},
        "adr": [f"{k} {s}" if k else "N/A" for k, s in zip(rng.integers(0, 120, n), streets)],
        "lat": _decimal(acc["lat"]), "long": _decimal(acc["long"]),
    })


def _rng(seed: int, year: int) -> np.random.Generator:
    """The generator of ``year``: another stream per year; 2021 (offset 0) is ``default_rng(seed)``,
    the stream docs/model.md's synthetic figures were measured on."""
    return np.random.default_rng([seed, (year - YEAR) % 2**32])


def generate(n_accidents: int = 20000, seed: int = 42, year: int = YEAR) -> dict:
    """Generate the four raw tables of ``year`` as text DataFrames in our column vocabulary.

    Parameters
    ----------
    n_accidents : int
        Number of accidents (each has 1-4 vehicles and 1+ users).
    seed : int
        Seed of the random generator: same seed and year, same bytes.
    year : int
        BAAC year 2019-2024: the accidents' ``an``, the users' birth years, the ``Num_Acc`` range
        and the random stream (each year draws other accidents).

    Returns
    -------
    dict
        table name -> DataFrame of str with the 2019-2021 header (``model.baac_formats.HEADERS``).
    """
    rng = _rng(seed, check_year(year))
    acc = _accidents(rng, n_accidents)
    places = _lieux(rng, acc)
    veh = _vehicles(rng, acc)
    nveh = np.bincount(veh["acc_idx"], minlength=n_accidents)
    single_ped = veh.groupby("acc_idx")["obsm"].min().to_numpy() == 1
    acc["col"] = np.where(nveh > 1, _pick(rng, P["col_multi"], n_accidents),
                          np.where(single_ped, 6, _pick(rng, P["col_single"], n_accidents)))
    users = _users(rng, acc, veh)
    users["grav"] = _severity(rng, acc, places, veh, users)
    base = int(f"{year}9") * 10**7  # disjoint from real ids, <year>000xxxxx
    num_acc = np.array([str(base + i + 1) for i in range(n_accidents)], dtype=object)
    caracteristiques = _caracteristiques(rng, acc, num_acc, year)
    lieux = pd.DataFrame({"Num_Acc": num_acc,
                          **{c: _text(places[c]) for c in HEADERS["lieux"][1:]}})
    vehicules = pd.DataFrame({"Num_Acc": num_acc[veh["acc_idx"]],
                              **{c: _text(veh[c]) for c in HEADERS["vehicules"][1:]}})
    missing_birth_year = rng.random(len(users)) < 0.01
    users["an_nais"] = np.where(missing_birth_year, "", (year - users["age"]).astype(str))
    users["secu3"] = -1
    on_vehicle = users["veh_idx"].to_numpy()
    usagers = pd.DataFrame({
        "Num_Acc": num_acc[users["acc_idx"]],
        "id_vehicule": veh["id_vehicule"].to_numpy()[on_vehicle],
        "num_veh": veh["num_veh"].to_numpy()[on_vehicle],
        **{c: _text(users[c]) for c in HEADERS["usagers"][3:]},
    })
    return {"caracteristiques": caracteristiques, "lieux": lieux, "vehicules": vehicules,
            "usagers": usagers}


def published(frame: pd.DataFrame, table: str, year: int) -> pd.DataFrame:
    """``frame`` (our vocabulary) with the columns ``year`` published: renamed, extras inserted."""
    fmt = PUBLISHED[year]
    out = frame[HEADERS[table]].rename(columns=fmt.renamed.get(table, {}))
    if table in fmt.extra:
        column, after = fmt.extra[table]
        position = out.columns.get_loc(fmt.renamed.get(table, {}).get(after, after)) + 1
        out.insert(position, column, _published_ids(ID_USAGER_BASE + np.arange(len(out))))
    return out


def write(dest, n_accidents: int = 20000, seed: int = 42, year: int = YEAR) -> dict:
    """Generate ``year`` and write its four files into ``dest`` as that year was published.

    File names, header, encoding and separator come from ``model.baac_formats.PUBLISHED``;
    every field is double-quoted and lines end with ``\\n``, as in the published files.

    Returns
    -------
    dict
        table name -> Path written.
    """
    fmt = PUBLISHED[check_year(year)]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = {}
    for table, frame in generate(n_accidents, seed, year).items():
        paths[table] = dest / fmt.names[table]
        published(frame, table, year).to_csv(
            paths[table], sep=fmt.separator, index=False, quoting=csv.QUOTE_ALL,
            lineterminator="\n", encoding=fmt.encoding,
        )
    return paths
