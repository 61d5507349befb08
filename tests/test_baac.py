"""model.baac: download against a local HTTP server on 127.0.0.1 only; reading the raw quirks."""

import hashlib
import http.server
import json
import socket
import threading

import pytest

from model import baac

pytestmark = pytest.mark.network

CONTENT = {
    table: f'"Num_Acc";"x"\n"20219{i:07d}";" -1"\n'.encode() * (200 + i)
    for i, table in enumerate(baac.TABLES)
}


class Server:
    """A tiny HTTP server on 127.0.0.1 serving CONTENT at /<table>, with scripted failures."""

    def __init__(self):
        self.requests = []
        self.failures = {}  # path -> list of status codes to answer before succeeding
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                planned = outer.failures.get(self.path)
                if planned:
                    self.send_error(planned.pop(0))
                    return
                body = CONTENT.get(self.path.strip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.urls = {t: f"http://127.0.0.1:{self.httpd.server_port}/{t}" for t in baac.TABLES}


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def fetch(dest, server, **kwargs):
    return baac.download(
        2021, dest, urls=server.urls, backoff=0.01, timeout=5, log=lambda m: None, **kwargs
    )


def test_downloads_all_files_and_records_sha256(tmp_path, server):
    manifest = fetch(tmp_path, server)
    for table, body in CONTENT.items():
        name = baac.raw_filename(table, 2021)
        assert (tmp_path / name).read_bytes() == body
        assert manifest["files"][name]["sha256"] == hashlib.sha256(body).hexdigest()
        assert manifest["files"][name]["size"] == len(body)
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
    assert server.requests == ["/lieux"]
    assert (tmp_path / "lieux-2021.csv").read_bytes() == CONTENT["lieux"]


def test_retries_server_errors_with_backoff(tmp_path, server):
    server.failures["/usagers"] = [503, 502]
    fetch(tmp_path, server, retries=3)
    assert server.requests.count("/usagers") == 3
    assert (tmp_path / "usagers-2021.csv").read_bytes() == CONTENT["usagers"]


def test_gives_up_after_the_retries(tmp_path, server):
    server.failures["/caracteristiques"] = [503] * 10
    with pytest.raises(baac.DownloadError, match="accident-api data synth"):
        fetch(tmp_path, server, retries=2)
    assert server.requests.count("/caracteristiques") == 3
    assert not (tmp_path / "caracteristiques-2021.csv").exists()


def test_client_errors_are_not_retried(tmp_path, server):
    server.urls["vehicules"] += "-missing"
    with pytest.raises(baac.DownloadError, match="HTTP 404"):
        fetch(tmp_path, server, retries=3)
    assert server.requests.count("/vehicules-missing") == 1


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


def test_unknown_year(tmp_path):
    with pytest.raises(baac.DownloadError, match="no known BAAC URLs"):
        baac.download(1999, tmp_path, log=lambda m: None)


def test_read_raw_keeps_quirks_as_text(tmp_path):
    for table in baac.TABLES:
        (tmp_path / baac.raw_filename(table, 2021)).write_text(
            '"Num_Acc";"id_vehicule";"lat";"adr"\n'
            '"202190000001";"201\u00c2\u00a0764";" -0,9644600000";"""QUOTED"" RUE, 3"\n',
            encoding="utf-8",
        )
    frame = baac.read_raw(tmp_path)["vehicules"]
    assert frame.loc[0, "Num_Acc"] == "202190000001"  # a string key, leading digits intact
    assert frame.loc[0, "id_vehicule"] == "201\u00c2\u00a0764"  # never repaired
    assert frame.loc[0, "lat"] == " -0,9644600000"  # parsed later by features.to_number
    assert frame.loc[0, "adr"] == '"QUOTED" RUE, 3'


def test_read_raw_missing_file_names_the_commands(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="accident-api data download.*accident-api data synth"
    ):
        baac.read_raw(tmp_path)
