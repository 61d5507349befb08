"""model.synth: each year's published BAAC format, consistent keys, a learnable severity."""

import re

import pytest

from model import baac, synth
from model.baac_formats import PUBLISHED, SUPPORTED_YEARS
from model.features import build_features

QUOTED_LINE = re.compile(r'^"(?:[^"]|"")*"(?:;"(?:[^"]|"")*")*$')  # "" escapes a quote
ID_VEHICULE = re.compile("^[0-9]+\u00c2\u00a0[0-9]{3}$")
DECIMAL = re.compile(r"^( -)?[0-9]+,[0-9]{10}$")


def lines(path):
    return path.read_bytes().decode("utf-8").split("\n")


@pytest.fixture(scope="module")
def tables(synthetic_raw_dir):
    return baac.read_raw(synthetic_raw_dir)


@pytest.mark.parametrize("table", baac.TABLES)
def test_every_field_quoted_semicolon_separated_lf_terminated(synthetic_raw_dir, table):
    text = lines(baac.raw_files(synthetic_raw_dir, 2021)[table])
    assert text[-1] == ""  # final newline, \n line endings
    assert all(QUOTED_LINE.match(line) for line in text[:-1])
    assert all("\r" not in line for line in text)


@pytest.mark.parametrize("table", baac.TABLES)
def test_headers_match_the_real_files_byte_for_byte(synthetic_raw_dir, baac_sample_dir, table):
    real = lines(baac_sample_dir / baac.raw_filename(table, 2021))
    ours = lines(baac.raw_files(synthetic_raw_dir, 2021)[table])
    assert ours[0] == real[0]
    assert all(
        QUOTED_LINE.match(line) for line in real[:-1]
    )  # the same quoting rule holds for both
    assert real[-1] == ours[-1] == ""


def test_value_formats(tables):
    carac = tables["caracteristiques"]
    assert carac["lat"].str.match(DECIMAL).all() and carac["long"].str.match(DECIMAL).all()
    assert carac["lat"].str.startswith(" -").any()  # overseas departments south of the equator
    assert carac["hrmn"].str.match(r"^[0-2][0-9]:[0-5][0-9]$").all()
    assert carac["mois"].str.match(r"^[01][0-9]$").all()
    assert {"2A", "2B"} <= set(carac["dep"]) and carac["com"].str.startswith("2A").any()
    assert (carac["an"] == "2021").all()
    for table in tables.values():
        for column in table.columns:
            assert not table[column].str.match(r"^-").any(), column  # negatives are written " -1"
    assert (tables["lieux"]["vma"] == " -1").any() and (tables["usagers"]["sexe"] == " -1").any()
    assert tables["vehicules"]["id_vehicule"].str.match(ID_VEHICULE).all()


def test_formats_match_the_real_sample(tables, baac_sample_dir):
    real = baac.read_raw(baac_sample_dir)
    assert real["vehicules"]["id_vehicule"].str.match(ID_VEHICULE).all()
    assert real["caracteristiques"]["long"].str.match(DECIMAL).all()
    for table in baac.TABLES:
        assert list(tables[table].columns) == list(real[table].columns)


def test_synthetic_ids_never_look_like_real_accidents(tables):
    assert tables["caracteristiques"]["Num_Acc"].str.match(r"^20219[0-9]{7}$").all()


def test_keys_are_consistent(tables):
    accidents = set(tables["caracteristiques"]["Num_Acc"])
    assert set(tables["lieux"]["Num_Acc"]) == accidents and len(tables["lieux"]) == len(accidents)
    vehicles = tables["vehicules"]
    assert set(vehicles["Num_Acc"]) == accidents and vehicles["id_vehicule"].is_unique
    vehicle_keys = set(zip(vehicles["Num_Acc"], vehicles["id_vehicule"], vehicles["num_veh"]))
    users = tables["usagers"]
    assert set(zip(users["Num_Acc"], users["id_vehicule"], users["num_veh"])) <= vehicle_keys
    assert set(users["Num_Acc"]) == accidents
    assert (
        users.groupby("Num_Acc").size().max() > 2 and vehicles.groupby("Num_Acc").size().max() > 2
    )
    assert vehicles.groupby("Num_Acc")["num_veh"].apply(lambda s: s.is_unique).all()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    first = synth.write(tmp_path / "a", 200, seed=1)
    again = synth.write(tmp_path / "b", 200, seed=1)
    other = synth.write(tmp_path / "c", 200, seed=2)
    assert first["usagers"].read_bytes() == again["usagers"].read_bytes()
    assert first["usagers"].read_bytes() != other["usagers"].read_bytes()


def test_features_are_in_domain_and_severity_follows_risk_factors(tables):
    frame, target, report = build_features(tables)
    out = {k: v for k, v in report["out_of_domain"].items() if v}
    assert set(out) <= {"vma"}  # only the deliberate " -1" speed limits
    assert (
        0.25 < target.mean() < 0.5
    )  # real 2021 sample: 0.36 of accidents have a killed/hospitalised user
    pedestrian = frame["catu"] == 3
    assert target[pedestrian].mean() > target[~pedestrian].mean() + 0.1
    rural = frame["agg_"] == 1
    assert target[rural].mean() > target[~rural].mean() + 0.1
    assert target[frame["vma"] >= 80].mean() > target[frame["vma"] <= 50].mean()


@pytest.mark.parametrize("year", SUPPORTED_YEARS)
def test_each_year_is_written_as_it_was_published(tmp_path, year):
    paths = synth.write(tmp_path, 50, seed=4, year=year)
    assert {table: path.name for table, path in paths.items()} == PUBLISHED[year].names
    headers = {table: lines(path)[0].split(";") for table, path in paths.items()}
    key = '"Accident_Id"' if year == 2022 else '"Num_Acc"'
    assert headers["caracteristiques"][0] == key
    assert all(header[0] == '"Num_Acc"' for t, header in headers.items() if t != "caracteristiques")
    expected_users = [f'"{c}"' for c in synth.HEADERS["usagers"]]
    if year >= 2022:
        expected_users.insert(1, '"id_usager"')
    assert headers["usagers"] == expected_users
    for path in paths.values():
        assert all(QUOTED_LINE.match(line) for line in lines(path)[:-1])
    accidents = baac.read_raw(tmp_path, year)["caracteristiques"]
    assert (accidents["an"] == str(year)).all()
    assert accidents["Num_Acc"].str.match(rf"^{year}9[0-9]{{7}}$").all()


def test_years_draw_other_accidents_and_2021_is_the_default_stream(tmp_path):
    default = synth.generate(300, seed=9)
    same = synth.generate(300, seed=9, year=2021)
    assert default["usagers"].equals(same["usagers"])
    hours = {y: tuple(synth.generate(300, seed=9, year=y)["caracteristiques"]["hrmn"])
             for y in SUPPORTED_YEARS}
    assert len(set(hours.values())) == len(SUPPORTED_YEARS)


def test_unsupported_year_is_refused(tmp_path):
    with pytest.raises(ValueError, match="2030 is not a supported BAAC year"):
        synth.write(tmp_path, 10, year=2030)
    assert not list(tmp_path.iterdir())
