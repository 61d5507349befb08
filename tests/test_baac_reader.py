"""model.baac_reader: finding each table's file, encodings, separators, headers, missing columns."""

import pytest

from model import synth
from model.baac_formats import PUBLISHED, SUPPORTED_YEARS, TABLES, raw_filename
from model.baac_reader import (
    BaacFormatError,
    detect_encoding,
    find_table_file,
    raw_files,
    read_raw,
    read_table,
)
from model.features import RAW_COLUMNS, build_features

ACCIDENTS = 60


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """year -> directory with that year's synthetic files under their published names."""
    root = tmp_path_factory.mktemp("published")
    for year in SUPPORTED_YEARS:
        synth.write(root / str(year), ACCIDENTS, seed=5, year=year)
    return {year: root / str(year) for year in SUPPORTED_YEARS}


def write(path, header, rows, encoding="utf-8", sep=";"):
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def lieux_row(num_acc="202390000001", vma="50"):
    return [num_acc, "3", "2", "1", "1", vma]


@pytest.mark.parametrize("year", SUPPORTED_YEARS)
def test_every_year_is_read_into_one_vocabulary(published, year):
    files = raw_files(published[year], year)
    assert {t: p.name for t, p in files.items()} == PUBLISHED[year].names
    tables = read_raw(published[year], year)
    for table in TABLES:
        assert set(synth.HEADERS[table]) <= set(tables[table].columns)
        assert tables[table].columns[0] == "Num_Acc"
    extra = set(tables["usagers"].columns) - set(synth.HEADERS["usagers"])
    assert extra == ({"id_usager"} if year >= 2022 else set())
    frame, target, report = build_features(tables)
    assert report["rows_out"] == ACCIDENTS and (frame["year_acc"] == year).all()


def test_our_name_is_preferred_to_a_published_one(published, tmp_path):
    for name in ("caract-2023.csv", raw_filename("caracteristiques", 2023)):
        (tmp_path / name).write_bytes((published[2023] / "caract-2023.csv").read_bytes())
    assert find_table_file(tmp_path, "caracteristiques", 2023).name == "caracteristiques-2023.csv"


def test_two_published_names_are_ambiguous(tmp_path):
    for name in ("caract-2024.csv", "Caract_2024.csv"):
        (tmp_path / name).write_text("Num_Acc\n")
    ambiguous = "2 files in .* are the caracteristiques table of 2024 .*Caract_2024.csv, caract"
    with pytest.raises(BaacFormatError, match=ambiguous + "-2024.csv.*keep one"):
        find_table_file(tmp_path, "caracteristiques", 2024)


def test_another_table_or_year_is_not_taken(tmp_path):
    (tmp_path / "vehicules-immatricules-baac-2023.csv").write_text("Num_Acc\n")
    (tmp_path / "vehicules-2022.csv").write_text("Num_Acc\n")
    with pytest.raises(FileNotFoundError, match=r"vehicules-2023.csv \(or its published name "
                                                r"vehicules-2023.csv\).*data synth --year 2023"):
        find_table_file(tmp_path, "vehicules", 2023)


@pytest.mark.parametrize(
    "encoding,expected", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252")]
)
def test_encoding_is_detected(tmp_path, encoding, expected):
    header = ["Num_Acc", "catr", "circ", "surf", "situ", "vma", "voie"]
    path = write(tmp_path / "lieux-2023.csv", header,
                 [lieux_row() + ["CHEMIN DES ÉCOLIERS – œuvre"]], encoding)
    assert detect_encoding(path) == expected
    frame = read_table(path, "lieux", 2023)
    assert list(frame.columns)[0] == "Num_Acc"  # no BOM left in the key's name
    assert frame.loc[0, "voie"] == "CHEMIN DES ÉCOLIERS – œuvre"


def test_the_whole_file_decides_the_encoding(tmp_path):
    header = ["Num_Acc", "catr", "circ", "surf", "situ", "vma", "voie"]
    rows = [lieux_row(f"2023900{i:05d}") + ["RUE"] for i in range(40000)]
    path = write(tmp_path / "lieux-2023.csv", header, rows + [lieux_row() + ["RUE DE L'ÉGLISE"]],
                 encoding="cp1252")
    assert path.stat().st_size > 1 << 20  # the only non-ASCII byte is past the first chunk
    assert detect_encoding(path) == "cp1252"
    assert read_table(path, "lieux", 2023)["voie"].iloc[-1] == "RUE DE L'ÉGLISE"


@pytest.mark.parametrize("sep", [";", ",", "\t"])
def test_separator_is_detected_quoted_or_not(tmp_path, sep):
    header = ['"Num_Acc"', '"catr"', '"circ"', '"surf"', '"situ"', '"vma"'] if sep == ";" else [
        "Num_Acc", "catr", "circ", "surf", "situ", "vma"]
    row = [f'"{v}"' for v in lieux_row(vma=" -1")] if sep == ";" else lieux_row(vma=" -1")
    frame = read_table(write(tmp_path / "lieux-2023.csv", header, [row], sep=sep), "lieux", 2023)
    assert frame.loc[0, "vma"] == " -1" and frame.loc[0, "Num_Acc"] == "202390000001"


def test_headers_are_normalised_whatever_the_name_and_case(tmp_path):
    header = ["ACCIDENT_ID", " Catr ", "CIRC", "surf", "Situ", "VMA", "Nouvelle_Colonne"]
    frame = read_table(write(tmp_path / "Lieux_2024.csv", header, [lieux_row() + ["x"]]),
                       "lieux", 2024)
    assert list(frame.columns) == ["Num_Acc", "catr", "circ", "surf", "situ", "vma",
                                   "nouvelle_colonne"]


def test_a_missing_required_column_names_file_column_and_year(published, tmp_path):
    source = published[2023] / "usagers-2023.csv"
    lines = source.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(";")
    grav = header.index('"grav"')
    trimmed = [";".join(c for i, c in enumerate(line.split(";")) if i != grav) for line in lines]
    path = tmp_path / "usagers-2023.csv"
    path.write_text("\n".join(trimmed) + "\n", encoding="utf-8")
    with pytest.raises(BaacFormatError,
                       match=r"usagers-2023.csv \(BAAC 2023 usagers\) has no column 'grav'"):
        read_table(path, "usagers", 2023)


def test_two_names_of_the_key_are_refused(tmp_path):
    header = ["Num_Acc", "Accident_Id", "catr", "circ", "surf", "situ", "vma"]
    path = write(tmp_path / "lieux-2022.csv", header, [["1"] + lieux_row()])
    with pytest.raises(BaacFormatError, match=r"lieux-2022.csv \(BAAC 2022\): several columns "
                                              r"mean \['Num_Acc'\]"):
        read_table(path, "lieux", 2022)


def test_a_header_without_separator_is_refused(tmp_path):
    path = tmp_path / "lieux-2023.csv"
    path.write_text("Num_Acc\n202390000001\n")
    with pytest.raises(BaacFormatError, match=r"lieux-2023.csv \(BAAC 2023\): cannot tell its "
                                              "separator"):
        read_table(path, "lieux", 2023)


def test_unsupported_year(tmp_path):
    with pytest.raises(ValueError, match="2018 is not a supported BAAC year"):
        read_raw(tmp_path, 2018)


def test_required_columns_are_all_build_features_reads(published):
    tables = read_raw(published[2021], 2021)
    only_required = {t: frame[list(RAW_COLUMNS[t])] for t, frame in tables.items()}
    full, target, _ = build_features(tables)
    lean, lean_target, _ = build_features(only_required)
    assert lean.equals(full) and lean_target.equals(target)
