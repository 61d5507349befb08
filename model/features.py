"""The 28 model features (domain in model.feature_specs, re-exported) and raw BAAC tables -> rows.

Recodings (documented here and in docs/model.md):
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
import numpy as np
import pandas as pd

from model.domain import DOMAIN, VALID
from model.feature_specs import (  # noqa: F401  (re-exported: the pandas-free feature table)
    ATM_TO_GROUP,
    CATV_GROUPS,
    CATV_TO_GROUP,
    DEPARTMENTS,
    FEATURE_SPECS,
    FEATURES,
    SPECS_BY_NAME,
    FeatureSpec,
    _cat,
    _num,
)

SEVERITY_RANK = {2: 3, 3: 2, 4: 1, 1: 0}  # grav -> rank: killed > hospitalised > light > unhurt
# The raw columns build_features reads, per table: a file without one of them cannot be used.
RAW_COLUMNS = {
    "caracteristiques": ("Num_Acc", "jour", "mois", "an", "hrmn", "lum", "dep", "com", "agg",
                         "int", "atm", "col", "lat", "long"),
    "lieux": ("Num_Acc", "catr", "circ", "surf", "situ", "vma"),
    "vehicules": ("Num_Acc", "id_vehicule", "catv", "obsm", "motor"),
    "usagers": ("Num_Acc", "id_vehicule", "place", "catu", "grav", "sexe", "an_nais", "secu1"),
}


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
    """Values outside each feature's domain (model.domain, as the API checks) become NaN;
    return how many per feature."""
    values = frame[list(FEATURES)].to_numpy("float64")
    bad = ~np.isnan(values) & (DOMAIN.violations(values) != VALID)
    frame[list(FEATURES)] = np.where(bad, np.nan, values)
    return {name: int(count) for name, count in zip(FEATURES, bad.sum(axis=0))}


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
