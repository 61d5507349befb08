"""Raw BAAC files: download from data.gouv.fr, and read them with the format's quirks.

Format quirks handled by ``read_raw``: ``;`` separator, every field double-quoted, comma
decimals (lat/long, larrout), a leading space on negatives (``" -1"``), empty fields, and
mis-encoded text (``id_vehicule`` carries ``"Â\\xa0"`` as thousands separator). Everything is
read as text; keys stay strings and are never repaired, so the tables join exactly as published.
"""

import json
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import requests
from tqdm import tqdm

from model.hashing import sha256_file

TABLES = ("caracteristiques", "lieux", "vehicules", "usagers")
# data.gouv.fr stable resource URLs (they redirect to the current static file).
RESOURCE = "https://www.data.gouv.fr/fr/datasets/r/"
URLS = {
    2021: {
        "caracteristiques": RESOURCE + "85cfdc0c-23e4-4674-9bcd-79a970d7269b",
        "lieux": RESOURCE + "8a4935aa-38cd-43af-bf10-0209d6d17434",
        "vehicules": RESOURCE + "0bb5953a-25d8-46f8-8c25-b5c2f5ba905e",
        "usagers": RESOURCE + "ba5a1956-7e82-41b7-a602-89d7dd484d7a",
    },
}
OFFLINE_HINT = (
    "work offline with synthetic BAAC-format data instead: "
    "`accident-api data synth` then `accident-api train --synthetic`"
)
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A raw file could not be downloaded; the message names the offline alternative."""


def raw_filename(table: str, year: int) -> str:
    """File name of one raw table, e.g. ``usagers-2021.csv``."""
    return f"{table}-{year}.csv"


def manifest_path(dest, year: int) -> Path:
    """Where the sha256 manifest of a year's downloaded files lives."""
    return Path(dest) / f"manifest-{year}.json"


def read_raw(raw_dir, year: int = 2021) -> dict:
    """Read the four raw tables of ``year`` from ``raw_dir`` as text DataFrames.

    Parameters
    ----------
    raw_dir : str or Path
        Directory holding ``<table>-<year>.csv`` files.
    year : int
        BAAC year.

    Returns
    -------
    dict
        table name -> DataFrame of str (values stripped of the quoting only; " -1" kept as text,
        parsed later by ``model.features.to_number``).
    """
    tables = {}
    for table in TABLES:
        path = Path(raw_dir) / raw_filename(table, year)
        if not path.is_file():
            raise FileNotFoundError(
                f"missing raw BAAC file {path}: run `accident-api data download "
                f"--year {year} --dest {raw_dir}` or `accident-api data synth`"
            )
        tables[table] = pd.read_csv(
            path,
            sep=";",
            quotechar='"',
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
            encoding_errors="replace",
            low_memory=False,
        )
    return tables


def _load_manifest(dest, year: int) -> dict:
    path = manifest_path(dest, year)
    if path.is_file():
        return json.loads(path.read_text())
    return {"year": year, "files": {}}


def _is_current(path: Path, entry: dict | None) -> bool:
    """True when the local file matches the manifest's recorded size and sha256."""
    return (
        entry is not None
        and path.is_file()
        and path.stat().st_size == entry.get("size")
        and sha256_file(path) == entry.get("sha256")
    )


def _check_resolvable(url: str) -> None:
    """Fail fast (no retries) when the host cannot even be resolved: we are offline."""
    host = urlparse(url).hostname
    try:
        socket.getaddrinfo(host, None)
    except OSError as exc:
        raise DownloadError(f"cannot resolve {host} ({exc}): no network? {OFFLINE_HINT}") from exc


def _fetch(url: str, target: Path, session, timeout: float, label: str) -> None:
    """Stream ``url`` to a temporary file beside ``target``, then rename it into place."""
    part = target.with_name(f".{target.name}.part")
    with session.get(url, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        total = int(response.headers.get("Content-Length") or 0) or None
        with part.open("wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr, leave=False
        ) as bar:
            for chunk in response.iter_content(chunk_size=1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
    part.replace(target)


def _fetch_with_retries(url, target, session, retries, backoff, timeout, label) -> None:
    """Retry connection errors, timeouts and 429/5xx with exponential backoff; 4xx fail at once."""
    for attempt in range(retries + 1):
        try:
            return _fetch(url, target, session, timeout, label)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status not in RETRYABLE_STATUS or attempt == retries:
                raise DownloadError(f"{url} answered HTTP {status}; {OFFLINE_HINT}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            if attempt == retries:
                raise DownloadError(
                    f"cannot download {url} after {retries + 1} attempts ({exc}); "
                    f"{OFFLINE_HINT}"
                ) from exc
        time.sleep(backoff * 2**attempt)


def download(
    year: int = 2021,
    dest="data/raw",
    urls: dict | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 30.0,
    session=None,
    log=print,
) -> dict:
    """Download the four raw BAAC tables of ``year`` into ``dest`` and record their sha256.

    Files already present with the size and sha256 recorded in the manifest are skipped.

    Parameters
    ----------
    year : int
        BAAC year (URLs known: 2021).
    dest : str or Path
        Target directory, created if needed.
    urls : dict, optional
        table -> URL; defaults to the data.gouv.fr resources of ``year`` (tests pass local URLs).
    retries, backoff, timeout : int, float, float
        Retry count, base backoff seconds (doubled each retry), per-request timeout.
    session : requests.Session, optional
        Session to use (a new one by default).
    log : callable
        Receives one line per file (downloaded or skipped).

    Returns
    -------
    dict
        The manifest: ``{"year", "files": {filename: {"url", "size", "sha256", "downloaded_at"}}}``,
        also written to ``dest/manifest-<year>.json`` after each file.
    """
    if urls is None:
        if year not in URLS:
            raise DownloadError(
                f"no known BAAC URLs for {year} (known: {sorted(URLS)}); {OFFLINE_HINT}"
            )
        urls = URLS[year]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(dest, year)
    session = session or requests.Session()
    for table in TABLES:
        name = raw_filename(table, year)
        target = dest / name
        entry = manifest["files"].get(name)
        if _is_current(target, entry):
            log(f"{name}: present, size and sha256 match the manifest, skipped")
            continue
        _check_resolvable(urls[table])
        _fetch_with_retries(urls[table], target, session, retries, backoff, timeout, name)
        manifest["files"][name] = {
            "url": urls[table],
            "size": target.stat().st_size,
            "sha256": sha256_file(target),
            "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        log(
            f"{name}: {target.stat().st_size} bytes, sha256 {manifest['files'][name]['sha256']}"
        )
        manifest_path(dest, year).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
