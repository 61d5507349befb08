"""model.baac: download against a local HTTP server on 127.0.0.1 only; reading the raw quirks.

The server stands in for data.gouv.fr: a stable resource URL ``/fr/datasets/r/<id>`` redirects
to the static file under its published name (or answers itself with a Content-Disposition),
so the downloader's check of the served name is exercised as it meets the real site.
"""

import argparse
import hashlib
import http.server
import json
import socket
import threading
from urllib.parse import quote

import pytest

from model import baac, cli, synth
from model.baac_formats import PUBLISHED, RESOURCE_IDS, SUPPORTED_YEARS, resource_urls

pytestmark = pytest.mark.network

CONTENT = {
    table: f'"Num_Acc";"x"\n"20219{i:07d}";" -1"\n'.encode() * (200 + i)
    for i, table in enumerate(baac.TABLES)
}
STATIC = "/resources/bases-de-donnees-annuelles/20251021-115900/"


class Server:
    """data.gouv.fr on 127.0.0.1: resource ids -> (published name, bytes), scripted failures."""

    def __init__(self):
        self.requests = []
        self.files = {}  # resource id -> (served file name, body)
        self.disposition = set()  # resource ids answered directly with a Content-Disposition
        self.failures = {}  # path -> list of status codes to answer before succeeding
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                planned = outer.failures.get(self.path)
                if planned:
                    self.send_error(planned.pop(0))
                    return
                resource = self.path.removeprefix("/fr/datasets/r/")
                if resource in outer.files:
                    name, body = outer.files[resource]
                    if resource not in outer.disposition:
                        self.send_response(302)
                        self.send_header("Location", STATIC + quote(name))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self._send(body, f"attachment; filename*=UTF-8''{quote(name)}")
                    return
                by_name = {quote(name): body for name, body in outer.files.values()}
                body = by_name.get(self.path.removeprefix(STATIC))
                if body is None:
                    self.send_error(404)
                    return
                self._send(body)

            def _send(self, body, disposition=None):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if disposition:
                    self.send_header("Content-Disposition", disposition)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_port}/fr/datasets/r/"

    def publish(self, year, bodies, names=None):
        """Serve ``bodies`` (table -> bytes) at the year's resource ids, under published names."""
        for table, resource in RESOURCE_IDS[year].items():
            name = (names or {}).get(table, PUBLISHED[year].names[table])
            self.files[resource] = (name, bodies[table])
        return resource_urls(year, self.base)

    def resource(self, year, table):
        return "/fr/datasets/r/" + RESOURCE_IDS[year][table]


@pytest.fixture
def server():
    srv = Server()
    srv.urls = srv.publish(2021, CONTENT)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def fetch(dest, server, year=2021, **kwargs):
    urls = kwargs.pop("urls", server.urls)
    return baac.download(
        year, dest, urls=urls, backoff=0.01, timeout=5, log=lambda m: None, **kwargs
    )


def test_downloads_all_files_and_records_sha256(tmp_path, server):
    manifest = fetch(tmp_path, server)
    for table, body in CONTENT.items():
        name = baac.raw_filename(table, 2021)
        assert (tmp_path / name).read_bytes() == body
        entry = manifest["files"][name]
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["size"] == len(body)
        assert entry["original_name"] == PUBLISHED[2021].names[table]
    assert manifest["files"]["caracteristiques-2021.csv"]["original_name"] == (
        "carcteristiques-2021.csv"
    )
    assert json.loads(baac.manifest_path(tmp_path, 2021).read_text()) == manifest
    assert not list(tmp_path.glob(".*.part"))  # temp files renamed into place


def test_skips_files_that_match_the_manifest(tmp_path, server):
    fetch(tmp_path, server)
    server.requests.clear()
    fetch(tmp_path, server)
    assert server.requests == []


def test_changed_file_is_downloaded_again(tmp_path, server):
    fetch(tmp_path, server)
    (tmp_path / "lieux-2021.csv").write_bytes(b"tampered")
    server.requests.clear()
    fetch(tmp_path, server)
    assert server.requests == [server.resource(2021, "lieux"), STATIC + "lieux-2021.csv"]
    assert (tmp_path / "lieux-2021.csv").read_bytes() == CONTENT["lieux"]


def test_retries_server_errors_with_backoff(tmp_path, server):
    server.failures[server.resource(2021, "usagers")] = [503, 502]
    fetch(tmp_path, server, retries=3)
    assert server.requests.count(server.resource(2021, "usagers")) == 3
    assert (tmp_path / "usagers-2021.csv").read_bytes() == CONTENT["usagers"]


def test_gives_up_after_the_retries(tmp_path, server):
    server.failures[server.resource(2021, "caracteristiques")] = [503] * 10
    with pytest.raises(baac.DownloadError, match="accident-api data synth"):
        fetch(tmp_path, server, retries=2)
    assert server.requests.count(server.resource(2021, "caracteristiques")) == 3
    assert not (tmp_path / "caracteristiques-2021.csv").exists()


def test_client_errors_are_not_retried(tmp_path, server):
    server.urls["vehicules"] += "-missing"
    with pytest.raises(baac.DownloadError, match="HTTP 404"):
        fetch(tmp_path, server, retries=3)
    assert server.requests.count(server.resource(2021, "vehicules") + "-missing") == 1


@pytest.mark.parametrize("year", SUPPORTED_YEARS)
def test_every_year_downloads_verifies_and_reads(tmp_path, server, year):
    published = synth.write(tmp_path / "published", 40, seed=3, year=year)
    bodies = {table: path.read_bytes() for table, path in published.items()}
    urls = server.publish(year, bodies)
    manifest = fetch(tmp_path / "raw", server, year, urls=urls)
    for table, path in published.items():
        entry = manifest["files"][baac.raw_filename(table, year)]
        assert (entry["original_name"], entry["size"]) == (path.name, len(bodies[table]))
        assert entry["sha256"] == hashlib.sha256(bodies[table]).hexdigest()
    tables = baac.read_raw(tmp_path / "raw", year)
    assert len(tables["caracteristiques"]) == 40
    assert (tables["caracteristiques"]["an"] == str(year)).all()
    assert set(tables["usagers"]["Num_Acc"]) == set(tables["caracteristiques"]["Num_Acc"])


def test_content_disposition_names_the_file(tmp_path, server):
    server.disposition.update(RESOURCE_IDS[2021].values())
    manifest = fetch(tmp_path, server)
    assert server.requests == [server.resource(2021, t) for t in baac.TABLES]  # no redirect
    assert manifest["files"]["caracteristiques-2021.csv"]["original_name"] == (
        "carcteristiques-2021.csv"
    )


@pytest.mark.parametrize("disposition", [False, True], ids=["redirect", "content-disposition"])
def test_a_resource_serving_another_file_is_refused(tmp_path, server, disposition):
    urls = server.publish(2023, CONTENT, names={"usagers": "usagers-2022.csv"})
    if disposition:
        server.disposition.add(RESOURCE_IDS[2023]["usagers"])
    refused = r"serves 'usagers-2022.csv', which is not the usagers file of 2023"
    with pytest.raises(baac.DownloadError, match=refused):
        fetch(tmp_path, server, 2023, urls=urls)
    assert not (tmp_path / "usagers-2023.csv").exists() and not list(tmp_path.glob(".*.part"))
    assert "usagers-2023.csv" not in json.loads(baac.manifest_path(tmp_path, 2023).read_text())[
        "files"
    ]


def test_another_table_of_the_same_year_is_refused(tmp_path, server):
    names = {"vehicules": "vehicules-immatricules-baac-2024.csv"}
    urls = server.publish(2024, CONTENT, names=names)
    with pytest.raises(baac.DownloadError, match="not the vehicules file of 2024"):
        fetch(tmp_path, server, 2024, urls=urls)


def test_unreachable_server_fails_with_the_offline_alternative(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    urls = {t: f"http://127.0.0.1:{port}/{t}" for t in baac.TABLES}
    with pytest.raises(baac.DownloadError, match="accident-api data synth"):
        baac.download(
            2021, tmp_path, urls=urls, retries=1, backoff=0.01, timeout=2, log=lambda m: None
        )


def test_unresolvable_host_fails_fast_without_retrying(tmp_path, monkeypatch):
    def no_dns(*args):
        raise socket.gaierror("Name or service not known")

    monkeypatch.setattr(baac.socket, "getaddrinfo", no_dns)
    with pytest.raises(baac.DownloadError, match="no network.*accident-api data synth"):
        baac.download(2021, tmp_path, log=lambda m: None)


def parse(argv):
    parser = argparse.ArgumentParser(prog="accident-api")
    cli.add_data_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.mark.parametrize("years", [["--year", "2023"], ["--years", "2019-2024"]])
def test_cli_download_offline_fails_at_once_pointing_to_synth(
    tmp_path, monkeypatch, capsys, years
):
    lookups = []

    def no_dns(host, *args):
        lookups.append(host)
        raise socket.gaierror("Temporary failure in name resolution")

    monkeypatch.setattr(baac.socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(baac.requests.Session, "get", lambda *a, **k: pytest.fail("no request"))
    args = parse(["data", "download", *years, "--dest", str(tmp_path)])
    assert args.handler(args) == 2
    err = capsys.readouterr().err
    first = 2023 if years[0] == "--year" else 2019
    assert "cannot resolve www.data.gouv.fr" in err
    assert f"`accident-api data synth --year {first}`" in err
    assert lookups == ["www.data.gouv.fr"]  # the first file's host, once: no retries
    assert list(tmp_path.iterdir()) == []


def test_unknown_year(tmp_path):
    with pytest.raises(baac.DownloadError, match="no BAAC files to download for 1999"):
        baac.download(1999, tmp_path, log=lambda m: None)


def test_read_raw_keeps_quirks_as_text(tmp_path):
    quirks = {
        "Num_Acc": "202190000001",
        "id_vehicule": "201\u00c2\u00a0764",
        "lat": " -0,9644600000",
        "adr": '"QUOTED" RUE, 3',
    }
    for table, columns in synth.HEADERS.items():
        row = {column: quirks.get(column, "1") for column in columns}
        header = ";".join(f'"{c}"' for c in columns)
        values = ";".join('"' + v.replace('"', '""') + '"' for v in row.values())
        (tmp_path / baac.raw_filename(table, 2021)).write_text(
            f"{header}\n{values}\n", encoding="utf-8"
        )
    tables = baac.read_raw(tmp_path)
    vehicles, accidents = tables["vehicules"], tables["caracteristiques"]
    assert vehicles.loc[0, "Num_Acc"] == "202190000001"  # a string key, leading digits intact
    assert vehicles.loc[0, "id_vehicule"] == "201\u00c2\u00a0764"  # never repaired
    assert accidents.loc[0, "lat"] == " -0,9644600000"  # parsed later by features.to_number
    assert accidents.loc[0, "adr"] == '"QUOTED" RUE, 3'


def test_read_raw_missing_file_names_the_commands(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="accident-api data download.*accident-api data synth"
    ):
        baac.read_raw(tmp_path)
