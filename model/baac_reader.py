"""One reader for every BAAC year 2019-2024: find each table's file, detect its bytes, normalise.

For each table of a year it finds the file (our ``<table>-<year>.csv`` or any name the table
was published under), detects the encoding (UTF-8 with or without BOM, else Windows-1252) and
the separator (from the header line), maps the header onto one vocabulary (``Num_Acc``
whatever the year calls it and however it is cased; unknown extra columns are kept under their
lower-cased name) and refuses a file that lacks a column the features need, naming the file,
the column and the year.

Values stay as published text, quirks included (``;`` inside quotes, comma decimals,
``" -1"``, the mis-encoded ``id_vehicule`` separator): keys are never repaired, so the tables
join exactly as published, and ``model.features.to_number`` parses the numbers later.
"""

import codecs
import csv
from pathlib import Path

import pandas as pd

from model.baac_formats import (
    COLUMN_ALIASES,
    HEADERS,
    PUBLISHED,
    TABLES,
    check_year,
    is_table_file,
    raw_filename,
)
from model.features import RAW_COLUMNS

SEPARATORS = ";,\t|"
FALLBACK_ENCODING = "cp1252"  # what French Windows tools write when they do not write UTF-8
_CANONICAL = {name.lower(): name for table in HEADERS.values() for name in table}
_CANONICAL.update({"id_usager": "id_usager", **COLUMN_ALIASES})


class BaacFormatError(ValueError):
    """A raw BAAC file cannot be read as its table (separator, header or a missing column)."""


def find_table_file(raw_dir, table: str, year: int) -> Path:
    """The file of ``table`` for ``year`` in ``raw_dir``: our name first, else a published one.

    Raises
    ------
    FileNotFoundError
        No file has a name of that table and year (the message names the commands that get one).
    BaacFormatError
        Several published names match and none is ours: which one to read is ambiguous.
    """
    raw_dir = Path(raw_dir)
    ours = raw_dir / raw_filename(table, year)
    if ours.is_file():
        return ours
    found = sorted(
        path for path in (raw_dir.iterdir() if raw_dir.is_dir() else ())
        if path.is_file() and is_table_file(path.name, table, year)
    )
    if len(found) > 1:
        raise BaacFormatError(
            f"{len(found)} files in {raw_dir} are the {table} table of {year} "
            f"({', '.join(p.name for p in found)}): keep one"
        )
    if not found:
        raise FileNotFoundError(
            f"missing raw BAAC file {ours} (or its published name "
            f"{PUBLISHED[year].names[table]}): run `accident-api data download --year {year} "
            f"--dest {raw_dir}` or `accident-api data synth --year {year} --dest {raw_dir}`"
        )
    return found[0]


def detect_encoding(path) -> str:
    """``utf-8-sig`` with a BOM, ``utf-8`` when every byte decodes as UTF-8, else cp1252."""
    with open(path, "rb") as raw:
        if raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            return "utf-8-sig"
        raw.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for chunk in iter(lambda: raw.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return FALLBACK_ENCODING
    return "utf-8"


def detect_separator(path, encoding: str, year: int) -> str:
    """The field separator of ``path``, read from its header line (``;`` since 2019)."""
    with open(path, encoding=encoding, errors="replace", newline="") as text:
        header = text.readline()
    try:
        return csv.Sniffer().sniff(header, delimiters=SEPARATORS).delimiter
    except csv.Error as exc:
        raise BaacFormatError(
            f"{path} (BAAC {year}): cannot tell its separator from the header line "
            f"{header.strip()[:80]!r}; expected one of {list(SEPARATORS)}"
        ) from exc


def normalise_columns(columns, path, year: int) -> list:
    """Header -> our vocabulary (``Accident_Id``/``NUM_ACC`` -> ``Num_Acc``); extras lower-cased."""
    names = []
    for column in columns:
        key = str(column).strip().lstrip("\ufeff").strip().lower()
        names.append(_CANONICAL.get(key, key))
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise BaacFormatError(
            f"{path} (BAAC {year}): several columns mean {doubled} "
            f"(header {list(columns)}): keep one of each"
        )
    return names


def read_table(path, table: str, year: int) -> pd.DataFrame:
    """Read one raw table as text with our column names; check the columns the features need."""
    encoding = detect_encoding(path)
    frame = pd.read_csv(
        path,
        sep=detect_separator(path, encoding, year),
        quotechar='"',
        dtype=str,
        keep_default_na=False,
        encoding=encoding,
        encoding_errors="replace",
        low_memory=False,
    )
    frame.columns = normalise_columns(frame.columns, path, year)
    missing = [column for column in RAW_COLUMNS[table] if column not in frame.columns]
    if missing:
        raise BaacFormatError(
            f"{path} (BAAC {year} {table}) has no column {', '.join(map(repr, missing))}: "
            f"the features need it; columns found: {list(frame.columns)}"
        )
    return frame


def read_raw(raw_dir, year: int = 2021) -> dict:
    """Read the four raw tables of ``year`` from ``raw_dir`` as text DataFrames.

    Parameters
    ----------
    raw_dir : str or Path
        Directory holding the year's files, under our names (``<table>-<year>.csv``) or the
        published ones (``carcteristiques-2022.csv``, ``Caract_2024.csv``, ...).
    year : int
        BAAC year, 2019-2024.

    Returns
    -------
    dict
        table name -> DataFrame of str with our column names (values stripped of the quoting
        only; " -1" kept as text, parsed later by ``model.features.to_number``).
    """
    files = raw_files(raw_dir, year)
    return {table: read_table(path, table, year) for table, path in files.items()}


def raw_files(raw_dir, year: int) -> dict:
    """table -> path of each table's file of ``year`` in ``raw_dir`` (what ``read_raw`` reads)."""
    check_year(year)
    return {table: find_table_file(raw_dir, table, year) for table in TABLES}
