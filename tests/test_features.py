"""model.features: the join, the most severe user, every recoding, domain checks, counted drops."""

import numpy as np
import pandas as pd
import pytest

from model import baac
from model.features import (
    CATV_TO_GROUP,
    FEATURE_SPECS,
    FEATURES,
    build_features,
    hour_of,
    to_number,
)
from model.impute import Imputer
from model.synth import HEADERS
from model.validation import smoke_rows

NBSP_KEY = "201\u00c2\u00a0"  # the published, mis-encoded thousands separator of id_vehicule

CONTRACT_ORDER = (
    "place",
    "catu",
    "sexe",
    "secu1",
    "year_acc",
    "victim_age",
    "catv",
    "obsm",
    "motor",
    "catr",
    "circ",
    "surf",
    "situ",
    "vma",
    "jour",
    "mois",
    "lum",
    "dep",
    "com",
    "agg_",
    "int_",
    "atm",
    "col",
    "lat",
    "long",
    "hour",
    "nb_victim",
    "nb_vehicules",
)


def accident(num, **overrides):
    row = {
        "Num_Acc": num,
        "jour": "30",
        "mois": "11",
        "an": "2021",
        "hrmn": "07:32",
        "lum": "2",
        "dep": "30",
        "com": "30319",
        "agg": "1",
        "int": "1",
        "atm": "1",
        "col": "1",
        "adr": "N/A",
        "lat": "44,0389580000",
        "long": "4,3480220000",
    }
    return {**row, **overrides}


def place(num, **overrides):
    row = dict.fromkeys(HEADERS["lieux"], "0")
    row.update({"Num_Acc": num, "catr": "3", "circ": "2", "surf": "1", "situ": "1", "vma": "80"})
    return {**row, **overrides}


def vehicle(num, key, letter, catv="7", obsm="2", motor="1"):
    row = dict.fromkeys(HEADERS["vehicules"], "0")
    row.update(
        {
            "Num_Acc": num,
            "id_vehicule": NBSP_KEY + key,
            "num_veh": letter + "01",
            "catv": catv,
            "obsm": obsm,
            "motor": motor,
        }
    )
    return row


def user(num, key, letter, grav, catu="1", place="1", sexe="1", an_nais="1980", secu1="1"):
    row = dict.fromkeys(HEADERS["usagers"], " -1")
    row.update(
        {
            "Num_Acc": num,
            "id_vehicule": NBSP_KEY + key,
            "num_veh": letter + "01",
            "place": place,
            "catu": catu,
            "grav": grav,
            "sexe": sexe,
            "an_nais": an_nais,
            "secu1": secu1,
        }
    )
    return row


def tables(accidents, places, vehicles, users):
    return {
        "caracteristiques": pd.DataFrame(accidents, columns=HEADERS["caracteristiques"]),
        "lieux": pd.DataFrame(places, columns=HEADERS["lieux"]),
        "vehicules": pd.DataFrame(vehicles, columns=HEADERS["vehicules"]),
        "usagers": pd.DataFrame(users, columns=HEADERS["usagers"]),
    }


def one_accident(acc=None, plc=None, users=None, vehicles=None):
    """A single accident '1' with two vehicles and the given users."""
    vehicles = vehicles or [
        vehicle("1", "001", "A"),
        vehicle("1", "002", "B", catv="33", obsm="2", motor="1"),
    ]
    users = users or [user("1", "001", "A", "1")]
    return build_features(
        tables([accident("1", **(acc or {}))], [place("1", **(plc or {}))], vehicles, users)
    )


def test_feature_order_is_the_contract():
    assert FEATURES == CONTRACT_ORDER
    assert len(FEATURE_SPECS) == 28


@pytest.mark.parametrize("spec", FEATURE_SPECS, ids=lambda s: s.name)
def test_specs_are_documented_and_their_example_is_valid(spec):
    assert spec.description and spec.source and spec.kind in ("categorical", "numeric")
    if spec.kind == "categorical":
        assert spec.codes and spec.example in spec.codes and spec.minimum is None
    else:
        assert spec.codes is None and spec.minimum <= spec.example <= spec.maximum


def test_join_keeps_the_most_severe_user_and_their_vehicle():
    users = [
        user("1", "001", "A", "1", an_nais="1970"),  # driver A, unhurt
        user(
            "1", "002", "B", "3", catu="2", place="2", sexe="2", an_nais="2001", secu1="2"
        ),  # hospitalised
        user("1", "002", "B", "4", catu="2", place="3"),
    ]  # light
    frame, target, report = one_accident(users=users)
    row = frame.loc["1"]
    assert (row["place"], row["catu"], row["sexe"], row["secu1"], row["victim_age"]) == (
        2,
        2,
        2,
        2,
        20,
    )
    assert (
        row["catv"] == 3
    )  # vehicle B (catv 33, motorcycle > 125 cm3), found through the mis-encoded key
    assert (row["nb_victim"], row["nb_vehicules"]) == (3, 2)
    assert target.loc["1"] == 1
    assert report["users_without_vehicle"] == 0


@pytest.mark.parametrize(
    "gravities,chosen_place,severe",
    [
        (("4", "2"), 2, 1),  # killed beats light
        (("3", "2"), 2, 1),  # killed beats hospitalised
        (("1", "4"), 2, 0),  # light beats unhurt; light is not severe
        (("4", "4"), 1, 0),  # tie: first user in file order
        ((" -1", "1"), 2, 0),  # unknown gravity is never chosen
    ],
)
def test_severity_order_and_target(gravities, chosen_place, severe):
    users = [
        user("1", "001", "A", gravities[0], place="1"),
        user("1", "001", "A", gravities[1], place="2"),
    ]
    frame, target, _ = one_accident(users=users)
    assert frame.loc["1", "place"] == chosen_place
    assert target.loc["1"] == severe


@pytest.mark.parametrize(
    "raw,group",
    [
        ("1", 0),
        ("8", 0),
        ("9", 0),
        ("2", 1),
        ("3", 1),
        ("4", 1),
        ("5", 1),
        ("6", 1),
        ("7", 1),
        (" -1", np.nan),
    ],
)
def test_atm_grouped(raw, group):
    frame, _, _ = one_accident(acc={"atm": raw})
    assert frame.loc["1", "atm"] == group or (np.isnan(group) and np.isnan(frame.loc["1", "atm"]))


@pytest.mark.parametrize(
    "raw,group",
    [
        ("1", 1),
        ("80", 1),
        ("50", 1),
        ("2", 2),
        ("30", 2),
        ("33", 3),
        ("7", 4),
        ("10", 5),
        ("14", 6),
        ("17", 6),
        ("37", 7),
        ("40", 7),
        ("0", 0),
        ("99", 0),
        ("21", 0),
    ],
)
def test_catv_grouped(raw, group):
    frame, _, _ = one_accident(vehicles=[vehicle("1", "001", "A", catv=raw)])
    assert frame.loc["1", "catv"] == group
    assert CATV_TO_GROUP.get(int(raw), 0) == group


@pytest.mark.parametrize(
    "dep,com,expected",
    [
        ("2A", "2A004", (201, 201004)),
        ("2B", "2B080", (202, 202080)),
        ("01", "01053", (1, 1053)),
        ("974", "97411", (974, 97411)),
    ],
)
def test_corsica_and_department_codes(dep, com, expected):
    frame, _, _ = one_accident(acc={"dep": dep, "com": com})
    assert (frame.loc["1", "dep"], frame.loc["1", "com"]) == expected


def test_hour_lat_long_and_comma_decimals():
    frame, _, _ = one_accident(
        acc={"hrmn": "23:59", "lat": " -21,1000000000", "long": " -0,9644600000"}
    )
    assert frame.loc["1", "hour"] == 23
    assert frame.loc["1", "lat"] == pytest.approx(-21.1)
    assert frame.loc["1", "long"] == pytest.approx(-0.96446)
    assert list(hour_of(pd.Series(["07:32", "0745", "5"]))) == [7, 7, 0]
    assert list(to_number(pd.Series([" -1", "5,5", "N/A", ""])).fillna(-99)) == [-1, 5.5, -99, -99]


@pytest.mark.parametrize(
    "an_nais,age",
    [("1980", 41), ("2021", 0), ("", np.nan), ("1850", np.nan), ("2030", np.nan), ("abcd", np.nan)],
)
def test_victim_age_and_bad_ages(an_nais, age):
    frame, _, _ = one_accident(users=[user("1", "001", "A", "3", an_nais=an_nais)])
    got = frame.loc["1", "victim_age"]
    assert got == age or (np.isnan(age) and np.isnan(got))


@pytest.mark.parametrize(
    "column,raw", [("vma", " -1"), ("vma", "500"), ("catr", "99"), ("circ", "8")]
)
def test_out_of_domain_becomes_missing_and_is_counted(column, raw):
    frame, _, report = one_accident(plc={column: raw})
    assert np.isnan(frame.loc["1", column])
    assert report["out_of_domain"][column] == 1
    assert report["missing"][column] == 1


def test_unusable_rows_are_counted_not_crashed_on():
    accs = [accident("1"), accident("2"), accident("3")]
    places = [place("1"), place("2")]  # accident 3 has no lieux row
    vehicles = [vehicle("1", "001", "A"), vehicle("3", "003", "A")]
    users = [
        user("1", "001", "A", " -1"),  # accident 1: only an unknown gravity -> dropped
        user("3", "999", "A", "2"),  # accident 3: user's vehicle key matches nothing
        user("4", "004", "A", "2"),
    ]  # accident 4 does not exist -> orphan user
    frame, target, report = build_features(tables(accs, places, vehicles, users))
    assert list(frame.index) == ["3"] and list(target) == [1]
    assert report["dropped_unknown_severity"] == 1
    assert report["dropped_no_users"] == 1  # accident 2
    assert report["orphan_users"] == 1
    assert report["users_without_vehicle"] == 1 and np.isnan(frame.loc["3", "catv"])
    assert report["accidents_without_lieux"] == 1 and np.isnan(frame.loc["3", "vma"])
    assert report["rows_out"] == 1 and report["accidents_in"] == 3


def test_imputer_learns_from_training_rows_only():
    train = pd.DataFrame({name: [1.0, 1.0, 2.0, np.nan] for name in FEATURES})
    train["victim_age"] = [20.0, 30.0, 41.0, np.nan]
    test = pd.DataFrame({name: [np.nan, 9.0] for name in FEATURES})
    imputer = Imputer().fit(train)
    filled = imputer.transform(test)
    assert filled.loc[0, "victim_age"] == 30.0  # median of the training rows, not of the test rows
    assert filled.loc[0, "catu"] == 1.0  # mode for categorical features
    assert filled.loc[1, "catu"] == 9.0  # present values untouched
    assert not filled.isna().any().any()


def test_imputer_rounds_integer_medians():
    train = pd.DataFrame({name: [1.0, 2.0] for name in FEATURES})
    assert (
        Imputer().fit(train).fill_values_["vma"] == 2.0
    )  # median 1.5 of an int feature -> round half even
    assert Imputer().fit(train).fill_values_["lat"] == 1.5


def test_fill_is_the_one_imputation_of_training_and_serving():
    valid = smoke_rows()  # documented example, lowest and highest value of every feature
    train = pd.DataFrame(np.vstack([valid, np.full((1, len(FEATURES)), np.nan)]), columns=FEATURES)
    test = pd.DataFrame(np.vstack([np.full((1, len(FEATURES)), np.nan), valid[2:], valid[1:2]]),
                        columns=FEATURES)
    test.loc[2, :] = np.nan
    test.loc[2, "vma"] = 30.0
    imputer = Imputer().fit(train)
    rows = test.to_numpy("float64")
    filled, imputed = imputer.fill(rows)
    assert np.array_equal(imputed, test.isna().to_numpy())
    assert np.array_equal(filled, test.fillna(imputer.fill_values_).to_numpy("float64"))
    assert np.array_equal(imputer.transform(test).to_numpy("float64"), filled)
    assert np.isnan(rows).sum() == 2 * len(FEATURES) - 1  # the input is left as it was
    served = Imputer.from_card({"imputation": imputer.fill_values_})
    assert np.array_equal(served.fill(rows)[0], filled)


def test_fill_without_missing_values_returns_the_rows_themselves():
    imputer = Imputer().fit(pd.DataFrame({name: [1.0] for name in FEATURES}))
    rows = np.ones((3, len(FEATURES)))
    filled, imputed = imputer.fill(rows)
    assert filled is rows and not imputed.any() and imputed.shape == rows.shape


KNOWN = {  # hand-read from the raw lines of the real sample, recoded as documented in features.py
    "202100000001": {
        "place": 1,
        "catu": 1,
        "sexe": 1,
        "secu1": 0,
        "victim_age": 21,
        "catv": 1,
        "obsm": 2,
        "motor": 5,
        "catr": 3,
        "vma": 80,
        "lum": 2,
        "dep": 30,
        "com": 30319,
        "agg_": 1,
        "atm": 0,
        "col": 1,
        "hour": 7,
        "lat": 44.038958,
        "nb_victim": 2,
        "nb_vehicules": 2,
        "target": 1,
    },
    "202100000003": {
        "place": 10,
        "catu": 3,
        "sexe": 2,
        "secu1": 0,
        "victim_age": 62,
        "catv": 4,
        "obsm": 1,
        "atm": 1,
        "col": 6,
        "long": -0.96446,
        "hour": 7,
        "mois": 7,
        "nb_victim": 2,
        "nb_vehicules": 1,
        "target": 1,
    },
    "202100000154": {
        "place": 10,
        "catu": 3,
        "victim_age": 76,
        "dep": 201,
        "com": 201004,
        "int_": 4,
        "atm": 0,
        "hour": 9,
        "jour": 31,
        "mois": 12,
        "target": 0,
    },
    "202100000034": {"place": 10, "catu": 3, "victim_age": 1, "situ": 4, "hour": 11, "target": 1},
}


def test_known_accidents_of_the_real_sample(baac_sample_dir):
    frame, target, report = build_features(baac.read_raw(baac_sample_dir, 2021))
    assert report["rows_out"] == report["accidents_in"] == 1120
    for num_acc, expected in KNOWN.items():
        for name, value in expected.items():
            got = target.loc[num_acc] if name == "target" else frame.loc[num_acc, name]
            assert got == pytest.approx(value), (num_acc, name)
