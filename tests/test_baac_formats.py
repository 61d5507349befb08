"""model.baac_formats: supported years, year ranges, published file names, resource ids."""

import pytest

from model.baac_formats import (
    PUBLISHED,
    RESOURCE_IDS,
    SUPPORTED_YEARS,
    TABLES,
    is_table_file,
    parse_years,
    resource_urls,
)


def test_supported_years_are_2019_to_2024_each_with_four_resources():
    assert SUPPORTED_YEARS == (2019, 2020, 2021, 2022, 2023, 2024)
    assert set(RESOURCE_IDS) == set(PUBLISHED) == set(SUPPORTED_YEARS)
    ids = [resource for year in SUPPORTED_YEARS for resource in RESOURCE_IDS[year].values()]
    assert all(set(RESOURCE_IDS[year]) == set(TABLES) for year in SUPPORTED_YEARS)
    assert len(set(ids)) == len(ids) == 24


def test_resource_urls():
    assert resource_urls(2023)["caracteristiques"] == (
        "https://www.data.gouv.fr/fr/datasets/r/104dbb32-704f-4e99-a71e-43563cb604f2"
    )
    assert resource_urls(2021, "http://127.0.0.1:1/r/")["usagers"] == (
        "http://127.0.0.1:1/r/ba5a1956-7e82-41b7-a602-89d7dd484d7a"
    )
    with pytest.raises(ValueError, match="2018 is not a supported BAAC year: 2019-2024"):
        resource_urls(2018)


@pytest.mark.parametrize(
    "text,years",
    [
        ("2021", (2021,)),
        ("2019-2023", (2019, 2020, 2021, 2022, 2023)),
        (" 2019 - 2020 ", (2019, 2020)),
        ("2024,2019", (2019, 2024)),
        ("2019-2020,2020", (2019, 2020)),
    ],
)
def test_parse_years(text, years):
    assert parse_years(text) == years


@pytest.mark.parametrize(
    "text,message",
    [
        ("2025", "2025 is not a supported BAAC year"),
        ("2018-2020", "2018 is not a supported BAAC year"),
        ("2023-2019", "the range must go up, e.g. 2019-2023"),
        ("twenty", "is not a year, a range"),
        ("2019-2020-2021", "is not a year, a range"),
        ("", "is not a year, a range"),
    ],
)
def test_parse_years_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_years(text)


@pytest.mark.parametrize("year", SUPPORTED_YEARS)
@pytest.mark.parametrize("table", TABLES)
def test_published_and_our_names_are_the_table_of_their_year(year, table):
    assert is_table_file(PUBLISHED[year].names[table], table, year)
    assert is_table_file(f"{table}-{year}.csv", table, year)
    assert not is_table_file(PUBLISHED[year].names[table], table, year - 1)
    others = [t for t in TABLES if t != table]
    assert not any(is_table_file(PUBLISHED[year].names[table], t, year) for t in others)


@pytest.mark.parametrize(
    "name,table,year,expected",
    [
        ("caract-2024.csv", "caracteristiques", 2024, True),  # the static file behind Caract_2024
        ("CARACTERISTIQUES_2019.csv", "caracteristiques", 2019, True),
        ("vehicules-immatricules-baac-2023.csv", "vehicules", 2023, False),  # another table
        ("usagers-2023.csv.part", "usagers", 2023, False),
        ("usagers-20230.csv", "usagers", 2023, False),
        ("lieux2023.csv", "lieux", 2023, False),
    ],
)
def test_name_patterns(name, table, year, expected):
    assert is_table_file(name, table, year) is expected


def test_published_header_differences():
    assert PUBLISHED[2022].renamed == {"caracteristiques": {"Num_Acc": "Accident_Id"}}
    assert all(not PUBLISHED[y].renamed for y in SUPPORTED_YEARS if y != 2022)
    with_id_usager = [y for y in SUPPORTED_YEARS if "usagers" in PUBLISHED[y].extra]
    assert with_id_usager == [2022, 2023, 2024]
    assert {(f.encoding, f.separator) for f in PUBLISHED.values()} == {("utf-8", ";")}
