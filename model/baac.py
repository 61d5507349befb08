"""Raw BAAC files of 2019-2024: download them from data.gouv.fr, verified; read them (re-exported).

``download`` fetches the four files of a year through their stable resource URLs, checks that
the file served is the table and year asked for (the final name, from Content-Disposition or
the last URL after redirects: a resource id that now points elsewhere is refused), stores it
under our name ``<table>-<year>.csv`` so several years share one directory, and records the
original name, size and sha256 in ``manifest-<year>.json``. Reading is ``model.baac_reader``.
"""

import email.message
import json
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from model.baac_formats import (  # noqa: F401  (re-exported: baac.TABLES, baac.raw_filename)
    PUBLISHED,
    TABLES,
    is_table_file,
    raw_filename,
    resource_urls,
)
from model.baac_reader import BaacFormatError, raw_files, read_raw  # noqa: F401  (re-exported)
from model.hashing import sha256_file

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A raw file could not be downloaded or is not the one asked for; the message says why."""


def offline_hint(year: int) -> str:
    """What to run instead when the files of ``year`` cannot be downloaded."""
    return (
        "work offline with synthetic BAAC-format data instead: "
        f"`accident-api data synth --year {year}` then "
        f"`accident-api train --raw-dir data/synth --year {year}` "
        "(or `accident-api train --synthetic`)"
    )


def manifest_path(dest, year: int) -> Path:
    """Where the sha256 manifest of a year's downloaded files lives."""
    return Path(dest) / f"manifest-{year}.json"


def served_name(response) -> str:
    """The file name a response serves: its Content-Disposition filename, else the final URL's."""
    disposition = response.headers.get("Content-Disposition")
    if disposition:
        header = email.message.Message()
        header["Content-Disposition"] = disposition
        name = header.get_filename()
        if name:
            return PurePosixPath(name.replace("\\", "/")).name
    return unquote(PurePosixPath(urlparse(response.url).path).name)


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


def _check_resolvable(url: str, year: int) -> None:
    """Fail fast (no retries) when the host cannot even be resolved: we are offline."""
    host = urlparse(url).hostname
    try:
        socket.getaddrinfo(host, None)
    except OSError as exc:
        raise DownloadError(
            f"cannot resolve {host} ({exc}): no network? {offline_hint(year)}"
        ) from exc


def _check_served_name(response, table: str, year: int) -> str:
    """Refuse a response whose file is not ``table`` of ``year``; return the name it serves."""
    name = served_name(response)
    if not is_table_file(name, table, year):
        raise DownloadError(
            f"{response.url} serves {name!r}, which is not the {table} file of {year} "
            f"(published as {PUBLISHED[year].names[table]!r}): the data.gouv.fr resource "
            f"may have been replaced; refusing it (check RESOURCE_IDS in model/baac_formats.py)"
        )
    return name


def _fetch(url: str, target: Path, session, timeout: float, table: str, year: int) -> str:
    """Stream ``url`` to a temporary file beside ``target``, then rename it into place.

    The served name is checked before a byte is written; returns that (original) name.
    """
    part = target.with_name(f".{target.name}.part")
    with session.get(url, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        original = _check_served_name(response, table, year)
        total = int(response.headers.get("Content-Length") or 0) or None
        with part.open("wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=target.name, file=sys.stderr,
            leave=False,
        ) as bar:
            for chunk in response.iter_content(chunk_size=1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
    part.replace(target)
    return original


def _fetch_with_retries(url, target, session, retries, backoff, timeout, table, year) -> str:
    """Retry connection errors, timeouts and 429/5xx with exponential backoff; 4xx fail at once."""
    for attempt in range(retries + 1):
        try:
            return _fetch(url, target, session, timeout, table, year)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status not in RETRYABLE_STATUS or attempt == retries:
                raise DownloadError(f"{url} answered HTTP {status}; {offline_hint(year)}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            if attempt == retries:
                raise DownloadError(
                    f"cannot download {url} after {retries + 1} attempts ({exc}); "
                    f"{offline_hint(year)}"
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
        BAAC year, 2019-2024.
    dest : str or Path
        Target directory, created if needed.
    urls : dict, optional
        table -> URL; defaults to ``resource_urls(year)`` on data.gouv.fr (tests pass local URLs).
    retries, backoff, timeout : int, float, float
        Retry count, base backoff seconds (doubled each retry), per-request timeout.
    session : requests.Session, optional
        Session to use (a new one by default).
    log : callable
        Receives one line per file (downloaded or skipped).

    Returns
    -------
    dict
        The manifest: ``{"year", "files": {filename: {"url", "original_name", "size", "sha256",
        "downloaded_at"}}}``, also written to ``dest/manifest-<year>.json`` after each file.

    Raises
    ------
    DownloadError
        Unsupported year, no network, HTTP error, or a served file that is not the one asked for.
    """
    if urls is None:
        try:
            urls = resource_urls(year)
        except ValueError as exc:
            raise DownloadError(f"no BAAC files to download for {year}: {exc}") from exc
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
        _check_resolvable(urls[table], year)
        original = _fetch_with_retries(
            urls[table], target, session, retries, backoff, timeout, table, year
        )
        manifest["files"][name] = {
            "url": urls[table],
            "original_name": original,
            "size": target.stat().st_size,
            "sha256": sha256_file(target),
            "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        log(f"{name} (published as {original}): {target.stat().st_size} bytes, "
            f"sha256 {manifest['files'][name]['sha256']}")
        manifest_path(dest, year).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
