"""The published BAAC years 2019-2024: resource ids, file names and header differences (no pandas).

Every year since 2019 shares one coding of the variables; what changes is how the files are
named and headed (docs/model.md, "Data: BAAC years and their formats", says where each fact
was read). The reader (model.baac_reader) needs only the file-name patterns below, it detects
everything else; the synthetic generator writes each year exactly as ``PUBLISHED`` says.
"""

import re
from dataclasses import dataclass, field

TABLES = ("caracteristiques", "lieux", "vehicules", "usagers")
# Our column vocabulary: the 2019-2021 headers, in their published order.
# fmt: off
HEADERS = {
    "caracteristiques": ["Num_Acc", "jour", "mois", "an", "hrmn", "lum", "dep", "com", "agg",
                         "int", "atm", "col", "adr", "lat", "long"],
    "lieux": ["Num_Acc", "catr", "voie", "v1", "v2", "circ", "nbv", "vosp", "prof", "pr", "pr1",
              "plan", "lartpc", "larrout", "surf", "infra", "situ", "vma"],
    "vehicules": ["Num_Acc", "id_vehicule", "num_veh", "senc", "catv", "obs", "obsm", "choc",
                  "manv", "motor", "occutc"],
    "usagers": ["Num_Acc", "id_vehicule", "num_veh", "place", "catu", "grav", "sexe", "an_nais",
                "trajet", "secu1", "secu2", "secu3", "locp", "actp", "etatp"],
}
# fmt: on
# Other names a column has had since 2019 (matched case-insensitively).
COLUMN_ALIASES = {"accident_id": "Num_Acc"}
SUPPORTED_YEARS = tuple(range(2019, 2025))
# data.gouv.fr stable resource URLs: each redirects to the current static file of the resource.
RESOURCE_BASE = "https://www.data.gouv.fr/fr/datasets/r/"
RESOURCE_IDS = {
    2019: {
        "caracteristiques": "e22ba475-45a3-46ac-a0f7-9ca9ed1e283a",
        "lieux": "2ad65965-36a1-4452-9c08-61a6c874e3e6",
        "vehicules": "780cd335-5048-4bd6-a841-105b44eb2667",
        "usagers": "36b1b7b3-84b4-4901-9163-59ae8a9e3028",
    },
    2020: {
        "caracteristiques": "07a88205-83c1-4123-a993-cba5331e8ae0",
        "lieux": "e85c41f7-d4ea-4faf-877f-ab69a620ce21",
        "vehicules": "a66be22f-c346-49af-b196-71df24702250",
        "usagers": "78c45763-d170-4d51-a881-e3147802d7ee",
    },
    2021: {
        "caracteristiques": "85cfdc0c-23e4-4674-9bcd-79a970d7269b",
        "lieux": "8a4935aa-38cd-43af-bf10-0209d6d17434",
        "vehicules": "0bb5953a-25d8-46f8-8c25-b5c2f5ba905e",
        "usagers": "ba5a1956-7e82-41b7-a602-89d7dd484d7a",
    },
    2022: {
        "caracteristiques": "5fc299c0-4598-4c29-b74c-6a67b0cc27e7",
        "lieux": "a6ef711a-1f03-44cb-921a-0ce8ec975995",
        "vehicules": "c9742921-4427-41e5-81bc-f13af8bc31a0",
        "usagers": "62c20524-d442-46f5-bfd8-982c59763ec8",
    },
    2023: {
        "caracteristiques": "104dbb32-704f-4e99-a71e-43563cb604f2",
        "lieux": "8bef19bf-a5e4-46b3-b5f9-a145da4686bc",
        "vehicules": "146a42f5-19f0-4b3e-a887-5cd8fbef057b",
        "usagers": "68848e2a-28dd-4efc-9d5f-d512f7dbe66f",
    },
    2024: {
        "caracteristiques": "83f0fb0e-e0ef-47fe-93dd-9aaee851674a",
        "lieux": "228b3cda-fdfb-4677-bd54-ab2107028d2d",
        "vehicules": "fd30513c-6b11-4a56-b6dc-5ac87728794b",
        "usagers": "f57b1f58-386d-4048-8f78-2ebe435df868",
    },
}
# A table's published names across the years: caracteristiques-2019, carcteristiques-2021
# (sic), caract-2023, Caract_2024. The same patterns find a table's file on disk and check a
# download's final name; "vehicules-immatricules-baac-2023.csv" (another table) never matches.
_TABLE_STEMS = {
    "caracteristiques": r"car(?:a?cteristiques|act)",
    "lieux": r"lieux",
    "vehicules": r"vehicules",
    "usagers": r"usagers",
}


@dataclass(frozen=True)
class YearFormat:
    """How one year's four files were published: names, renamed and extra columns, bytes."""

    names: dict  # table -> published file name
    renamed: dict = field(default_factory=dict)  # table -> {our column: the year's column}
    extra: dict = field(default_factory=dict)  # table -> (column, the column it follows)
    encoding: str = "utf-8"
    separator: str = ";"


def _names(caracteristiques: str, year: int, style: str = "{table}-{year}.csv") -> dict:
    names = {t: style.format(table=t, year=year) for t in ("lieux", "vehicules", "usagers")}
    return {"caracteristiques": caracteristiques, **names}


_ID_USAGER = {"usagers": ("id_usager", "Num_Acc")}
PUBLISHED = {
    2019: YearFormat(_names("caracteristiques-2019.csv", 2019)),
    2020: YearFormat(_names("caracteristiques-2020.csv", 2020)),
    2021: YearFormat(_names("carcteristiques-2021.csv", 2021)),
    2022: YearFormat(
        _names("carcteristiques-2022.csv", 2022),
        renamed={"caracteristiques": {"Num_Acc": "Accident_Id"}},
        extra=_ID_USAGER,
    ),
    2023: YearFormat(_names("caract-2023.csv", 2023), extra=_ID_USAGER),
    2024: YearFormat(
        {t: f"{t.capitalize()}_2024.csv" for t in ("lieux", "vehicules", "usagers")}
        | {"caracteristiques": "Caract_2024.csv"},
        extra=_ID_USAGER,
    ),
}


def raw_filename(table: str, year: int) -> str:
    """Our name of one raw table, e.g. ``usagers-2021.csv``: several years fit in one directory."""
    return f"{table}-{year}.csv"


def is_table_file(name: str, table: str, year: int) -> bool:
    """True when ``name`` is a name the ``table`` file of ``year`` is or was published under."""
    pattern = rf"{_TABLE_STEMS[table]}[-_]{year}\.csv"
    return re.fullmatch(pattern, name.strip(), flags=re.IGNORECASE) is not None


def resource_urls(year: int, base: str = RESOURCE_BASE) -> dict:
    """table -> download URL of ``year`` (``base`` + resource id; tests pass a local base)."""
    check_year(year)
    return {table: base + resource for table, resource in RESOURCE_IDS[year].items()}


def check_year(year: int) -> int:
    """Return ``year`` if it is a supported BAAC year, else raise ValueError saying which are."""
    if year not in SUPPORTED_YEARS:
        raise ValueError(
            f"{year} is not a supported BAAC year: "
            f"{SUPPORTED_YEARS[0]}-{SUPPORTED_YEARS[-1]} share one format"
        )
    return year


def parse_years(text: str) -> tuple:
    """Years from ``2021``, ``2019-2023`` or ``2019,2021``; each must be a supported year."""
    years = []
    for part in str(text).split(","):
        bounds = part.strip().split("-")
        if len(bounds) > 2 or not all(b.strip().isdigit() for b in bounds):
            raise ValueError(f"{text!r} is not a year, a range (2019-2023) or a list (2019,2021)")
        first, last = int(bounds[0]), int(bounds[-1])
        if first > last:
            raise ValueError(f"{part.strip()!r}: the range must go up, e.g. {last}-{first}")
        years.extend(check_year(y) for y in range(first, last + 1))
    return tuple(sorted(set(years)))
