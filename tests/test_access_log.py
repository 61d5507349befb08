"""AccessLogger writes exactly gunicorn's access line, only cheaper; gunicorn's rules still hold.

Requests are built without a network: raw HTTP bytes through gunicorn's own parser,
`gunicorn.http.wsgi.create` and `Response` (writing to a socket stand-in), so `access` gets the
very objects a sync worker passes. Each line is compared with gunicorn's `Logger.access` for
the same request.
"""
import datetime
import io
import logging
import time

import pytest
from gunicorn.config import Config as GunicornConfig
from gunicorn.glogging import Logger
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from accident_api.access_log import COMBINED_FORMAT, AccessLogger
from accident_api.config import Config
from accident_api.server import gunicorn_options

CLIENT = ("203.0.113.7", 51234)
SERVER = ("127.0.0.1", 8000)
ELAPSED = datetime.timedelta(microseconds=812)


class _Socket:
    """What a Response writes to: collects the bytes."""

    def __init__(self):
        self.data = bytearray()

    def sendall(self, data):
        self.data += data

    send = sendall


def _gunicorn_cfg(**settings):
    cfg = GunicornConfig()
    for key, value in {"accesslog": "-", **settings}.items():
        cfg.set(key, value)
    return cfg


def _served(raw: bytes, status="200 OK", headers=(("Content-Type", "application/json"),),
            body=b'{"ok": true}', client=CLIENT, cfg=None):
    """(resp, req, environ) as a sync worker hands them to `log.access` after answering."""
    cfg = cfg or _gunicorn_cfg()
    req = next(RequestParser(cfg, iter([raw]), client))
    resp, environ = wsgi.create(req, _Socket(), client, SERVER, cfg)
    resp.force_close()
    resp.start_response(status, list(headers))
    if body:
        resp.write(body)
    resp.close()
    return resp, req, environ


def _gunicorn_handlers(log):
    """The handlers gunicorn set up (pytest attaches its own to non-propagating loggers)."""
    return [h for h in log.access_log.handlers if getattr(h, "_gunicorn", False)]


def _line(logger_class, cfg, resp, req, environ, route="direct") -> str:
    """What `logger_class(cfg).access` writes to the access log's stream.

    route "direct": gunicorn's handler alone on the logger (pytest's capture handlers taken off
    for the call), so AccessLogger writes to its stream itself; "logging": a pass-through
    filter on the logger, so the line goes through a LogRecord and logging's handlers.
    """
    log = logger_class(cfg)
    stream = io.StringIO()
    for handler in _gunicorn_handlers(log):
        handler.setStream(stream)
    access_log = log.access_log
    saved = access_log.handlers[:]
    access_log.handlers[:] = _gunicorn_handlers(log)

    def passes(record):
        return True

    if route == "logging":
        access_log.addFilter(passes)
    try:
        if isinstance(log, AccessLogger) and log._combined:
            assert (log._plain_handler(access_log) is not None) == (route == "direct")
        log.access(resp, req, environ, ELAPSED)
    finally:
        access_log.removeFilter(passes)
        access_log.handlers[:] = saved
    return stream.getvalue()


def _stamp(line: str) -> str:
    return line[line.index("["):line.index("]") + 1]


def _same_second_lines(cfg, resp, req, environ, route="direct"):
    """gunicorn's line and ours, taken within one second (both carry the time).

    gunicorn's `time.strftime(fmt)` reads the kernel's coarse clock (C `time()`, updated once
    per tick) and ours `time.time()`: within a few ms of a second boundary the two seconds
    differ, so a sample taken there is taken again a little later.
    """
    for _ in range(5):
        before = _line(Logger, cfg, resp, req, environ)
        ours = _line(AccessLogger, cfg, resp, req, environ, route)
        after = _line(Logger, cfg, resp, req, environ)
        if before == after and _stamp(ours) == _stamp(before):
            return before, ours
        time.sleep(0.05)  # out of the window where the two clocks disagree
    raise AssertionError(f"no sample within one second: {before!r} / {ours!r} / {after!r}")


@pytest.fixture(params=["direct", "logging"])
def route(request):
    """Both ways AccessLogger hands a line on: its own write, or a LogRecord through logging."""
    return request.param


def _request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


PREDICT = _request("POST /predict HTTP/1.1\nHost: 127.0.0.1:8000\nUser-Agent: wrk\n"
                   "Content-Type: application/json\nContent-Length: 2\n", b"{}")
LARGE = b"x" * (5 * 1024 * 1024 + 3)

CASES = {
    "post-with-user-agent": (PREDICT, {}),
    "referer-query-string": (_request(
        "GET /model?include=reference&x=%22y%22 HTTP/1.1\nHost: h\n"
        "Referer: http://example.org/a?b=c\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\n"), {}),
    "no-referer-no-user-agent": (_request("GET /health/live HTTP/1.1\nHost: h\n"), {}),
    "http-1.0": (_request("GET /health/ready HTTP/1.0\n"), {}),
    "404": (_request("GET /nope HTTP/1.1\nHost: h\n"),
            {"status": "404 NOT FOUND", "body": b'{"code": 404}'}),
    "405-delete": (_request("DELETE /predict HTTP/1.1\nHost: h\n"),
                   {"status": "405 METHOD NOT ALLOWED"}),
    "503-empty-body": (_request("GET /health/ready HTTP/1.1\nHost: h\n"),
                       {"status": "503 SERVICE UNAVAILABLE", "body": b""}),
    "large-body": (PREDICT, {"body": LARGE,
                             "headers": [("Content-Length", str(len(LARGE)))]}),
    "quotes-backslashes-percent": (_request(
        'GET /a%20b/%25s/"q"?k="v"&p=%(h)s HTTP/1.1\nHost: h\n'
        'Referer: say "hi" \\ %s %(a)s\nUser-Agent: curl/8 "quoted" \\"already\\"\n'), {}),
    "latin-1-and-tabs-in-headers": (_request(
        "GET /caf%C3%A9 HTTP/1.1\nHost: h\nUser-Agent: ag\xe9nt\tv1\nReferer: \n"), {}),
    "basic-auth-user": (_request(
        "GET / HTTP/1.1\nHost: h\nAuthorization: Basic dXNlciJuYW1lOnNlY3JldA==\n"), {}),
    "basic-auth-undecodable": (_request(
        "GET / HTTP/1.1\nHost: h\nAuthorization: Basic %%%\n"), {}),
    "bearer-key-not-logged": (_request(
        "GET / HTTP/1.1\nHost: h\nAuthorization: Bearer 0123456789abcdef0123\n"), {}),
    "unix-socket-client": (_request("GET / HTTP/1.1\nHost: h\n"), {"client": ""}),
    "head": (_request("HEAD /model HTTP/1.1\nHost: h\n"), {}),
}


@pytest.mark.parametrize("raw, served", CASES.values(), ids=CASES.keys())
def test_line_is_gunicorns_byte_for_byte(raw, served, route):
    cfg = _gunicorn_cfg()
    resp, req, environ = _served(raw, cfg=cfg, **served)
    gunicorn_line, ours = _same_second_lines(cfg, resp, req, environ, route)
    assert ours == gunicorn_line
    assert ours.endswith("\n") and ours.count("\n") == 1


def test_the_service_format_is_gunicorns_default():
    """So AccessLogger writes the service's lines itself (else gunicorn's code would run)."""
    assert GunicornConfig().access_log_format == COMBINED_FORMAT


def test_sample_line_has_the_combined_format():
    cfg = _gunicorn_cfg()
    _, ours = _same_second_lines(cfg, *_served(PREDICT, cfg=cfg))
    stamp = time.strftime("%d/%b/%Y")
    assert ours.startswith(f'203.0.113.7 - - [{stamp}:')
    assert ours.endswith('] "POST /predict HTTP/1.1" 200 12 "-" "wrk"\n')


def test_quotes_are_escaped_as_gunicorn_does():
    cfg = _gunicorn_cfg()
    raw, served = CASES["quotes-backslashes-percent"]
    _, ours = _same_second_lines(cfg, *_served(raw, cfg=cfg, **served))
    assert ours.endswith('"GET /a%20b/%25s/\\"q\\"?k=\\"v\\"&p=%(h)s HTTP/1.1" 200 12 '
                         '"say \\"hi\\" \\ %s %(a)s" "curl/8 \\"quoted\\" \\\\"already\\\\""\n')


def _with(environ, **changes):
    environ = dict(environ)
    for key, value in changes.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


class _Resp:
    def __init__(self, status="200 OK", sent=None, headers=()):
        self.status, self.headers = status, list(headers)
        if sent is not None:
            self.sent = sent


@pytest.mark.parametrize("environ_changes, resp", [
    ({"REMOTE_ADDR": None}, _Resp(sent=10)),  # no client address: '-'
    ({}, _Resp()),  # no `sent` attribute: '-'
    ({}, _Resp(status=None, sent=0)),  # status never set (app raised before start_response)
    ({}, _Resp(status=502, sent=0)),  # a non-string status is printed as is
    ({"HTTP_REFERER": "", "HTTP_USER_AGENT": ""}, _Resp(sent=1)),  # empty, not missing
    ({"REMOTE_ADDR": 'a"b'}, _Resp(status='200 "OK"', sent=3)),
], ids=["no-remote-addr", "no-sent", "no-status", "int-status", "empty-headers", "quotes"])
def test_missing_or_odd_fields_as_gunicorn_renders_them(environ_changes, resp, route):
    cfg = _gunicorn_cfg()
    _, req, environ = _served(PREDICT, cfg=cfg)
    environ = _with(environ, **environ_changes)
    gunicorn_line, ours = _same_second_lines(cfg, resp, req, environ, route)
    assert ours == gunicorn_line


def test_invalid_request_line_as_gunicorns_handle_error_logs_it(route):
    """Worker.handle_error: a fresh Response with only status set, environ from the request."""
    cfg = _gunicorn_cfg()
    req = next(RequestParser(cfg, iter([PREDICT]), CLIENT))
    environ = wsgi.default_environ(req, _Socket(), cfg)
    environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = CLIENT[0], str(CLIENT[1])
    resp = wsgi.Response(req, _Socket(), cfg)
    resp.status = "400 Bad Request"
    gunicorn_line, ours = _same_second_lines(cfg, resp, req, environ, route)
    assert ours == gunicorn_line and '" 400 0 "-" "-"' in ours


def test_timestamp_is_gunicorns_and_formatted_once_per_second(monkeypatch):
    # an offset with minutes, and no tz database needed (POSIX TZ string)
    monkeypatch.setenv("TZ", "NST+3:30")
    time.tzset()
    try:
        log = AccessLogger(_gunicorn_cfg())
        clock = [1_795_000_000.25]
        monkeypatch.setattr(time, "time", lambda: clock[0])
        first = log.now()
        assert first == time.strftime("[%d/%b/%Y:%H:%M:%S %z]",
                                      time.localtime(1_795_000_000))
        assert first.endswith(" -0330]")
        clock[0] += 0.7  # same second: the very same string, not formatted again
        assert log.now() is first
        clock[0] += 0.1  # next second
        assert log.now() == time.strftime("[%d/%b/%Y:%H:%M:%S %z]",
                                          time.localtime(1_795_000_001))
        monkeypatch.undo()  # real clock: the same text gunicorn's strftime gives now
        for _ in range(5):  # retried across a second boundary (see _same_second_lines)
            before, ours, after = Logger.now(log), log.now(), Logger.now(log)
            if before == ours == after:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{before} / {ours} / {after}")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_access_log_off_does_no_work(monkeypatch):
    """accesslog None (ACCESS_LOG=0) and no syslog or logconfig: nothing is built or written."""
    log = AccessLogger(_gunicorn_cfg(accesslog=None))
    assert not log.access_log_enabled
    assert not _gunicorn_handlers(log)

    def fail(*args):
        raise AssertionError("access line built with the access log off")

    monkeypatch.setattr(log, "now", fail)
    monkeypatch.setattr(log.access_log, "handle", fail)
    log.access(*_served(PREDICT), ELAPSED)


def test_operator_format_uses_gunicorns_implementation():
    fmt = '%(h)s %(m)s %(U)s %(q)s %(s)s %(B)s %(D)s %({user-agent}i)s %({content-type}o)s'
    cfg = _gunicorn_cfg(access_log_format=fmt)
    resp, req, environ = _served(PREDICT, cfg=cfg)
    gunicorn_line = _line(Logger, cfg, resp, req, environ)
    assert gunicorn_line == "203.0.113.7 POST /predict  200 12 812 wrk application/json\n"
    assert _line(AccessLogger, cfg, resp, req, environ) == gunicorn_line


def test_logging_configuration_gets_gunicorns_record(monkeypatch):
    """With a logconfig, formatters may read gunicorn's atoms from record.args: kept."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    cfg = _gunicorn_cfg(logconfig_dict={"version": 1, "disable_existing_loggers": False})
    log = AccessLogger(cfg)
    keep = Keep()
    log.access_log.addHandler(keep)
    try:
        log.access(*_served(PREDICT, cfg=cfg), ELAPSED)
    finally:
        log.access_log.removeHandler(keep)
    assert len(records) == 1
    assert records[0].msg == COMBINED_FORMAT and records[0].args["a"] == "wrk"


def test_access_log_file_gets_the_line(tmp_path):
    path = tmp_path / "access.log"
    cfg = _gunicorn_cfg(accesslog=str(path))
    log = AccessLogger(cfg)
    try:
        log.access(*_served(PREDICT, cfg=cfg), ELAPSED)
    finally:
        for handler in _gunicorn_handlers(log):
            handler.close()
    assert path.read_text().endswith('"POST /predict HTTP/1.1" 200 12 "-" "wrk"\n')


def test_filters_on_the_access_logger_still_apply():
    log = AccessLogger(_gunicorn_cfg())
    stream = io.StringIO()
    (handler,) = _gunicorn_handlers(log)
    handler.setStream(stream)
    drop_health = logging.Filter()
    drop_health.filter = lambda record: "/health/" not in record.getMessage()
    log.access_log.addFilter(drop_health)
    try:
        log.access(*_served(_request("GET /health/live HTTP/1.1\nHost: h\n")), ELAPSED)
        log.access(*_served(PREDICT), ELAPSED)
    finally:
        log.access_log.removeFilter(drop_health)
    assert stream.getvalue().count("\n") == 1 and "/predict" in stream.getvalue()


def test_plain_stream_gets_the_line_without_a_log_record(monkeypatch):
    log = AccessLogger(_gunicorn_cfg())
    monkeypatch.setattr(log.access_log, "handlers", _gunicorn_handlers(log))
    stream = io.StringIO()
    (handler,) = log.access_log.handlers
    handler.setStream(stream)

    def no_record(*args, **kwargs):
        raise AssertionError("a LogRecord was built")

    monkeypatch.setattr(log.access_log, "makeRecord", no_record)
    log.access(*_served(PREDICT), ELAPSED)
    assert stream.getvalue().endswith('"POST /predict HTTP/1.1" 200 12 "-" "wrk"\n')


def test_another_handler_gets_the_record_and_the_stream_its_line(monkeypatch):
    log = AccessLogger(_gunicorn_cfg())
    monkeypatch.setattr(log.access_log, "handlers", _gunicorn_handlers(log))
    stream = io.StringIO()
    log.access_log.handlers[0].setStream(stream)
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    log.access_log.addHandler(Keep())
    log.access(*_served(PREDICT), ELAPSED)
    assert len(records) == 1 and records[0].getMessage() + "\n" == stream.getvalue()
    assert records[0].name == "gunicorn.access" and records[0].levelno == logging.INFO


def test_propagating_access_logger_reaches_its_parents_handlers(monkeypatch):
    log = AccessLogger(_gunicorn_cfg())
    monkeypatch.setattr(log.access_log, "handlers", _gunicorn_handlers(log))
    log.access_log.handlers[0].setStream(io.StringIO())
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    parent = logging.getLogger("gunicorn")
    keep = Keep()
    parent.addHandler(keep)
    monkeypatch.setattr(log.access_log, "propagate", True)
    try:
        log.access(*_served(PREDICT), ELAPSED)
    finally:
        parent.removeHandler(keep)
    assert len(records) == 1 and records[0].getMessage().endswith('"-" "wrk"')


def test_stream_write_error_is_reported_as_logging_does(monkeypatch):
    log = AccessLogger(_gunicorn_cfg())
    monkeypatch.setattr(log.access_log, "handlers", _gunicorn_handlers(log))

    class Broken(io.StringIO):
        def write(self, text):
            raise OSError("disk full")

    (handler,) = log.access_log.handlers
    handler.setStream(Broken())
    reported = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    log.access(*_served(PREDICT), ELAPSED)  # no exception
    assert len(reported) == 1 and reported[0].getMessage().endswith('"-" "wrk"')


def test_closed_access_log_file_is_reopened(tmp_path, monkeypatch):
    """A FileHandler whose stream is closed (reopen_files, USR1) opens it again to write."""
    path = tmp_path / "access.log"
    cfg = _gunicorn_cfg(accesslog=str(path))
    log = AccessLogger(cfg)
    monkeypatch.setattr(log.access_log, "handlers", _gunicorn_handlers(log))
    (handler,) = log.access_log.handlers
    try:
        log.access(*_served(PREDICT, cfg=cfg), ELAPSED)
        handler.close()
        assert handler.stream is None
        log.access(*_served(PREDICT, cfg=cfg), ELAPSED)
    finally:
        handler.close()
    assert path.read_text().count('"POST /predict HTTP/1.1" 200 12 "-" "wrk"\n') == 2


def test_a_logging_error_never_breaks_the_request(monkeypatch):
    log = AccessLogger(_gunicorn_cfg())
    errors = []
    monkeypatch.setattr(log, "error", lambda message, *args: errors.append(message))
    resp, req, environ = _served(PREDICT)
    del environ["REQUEST_METHOD"]
    log.access(resp, req, environ, ELAPSED)  # no exception
    assert len(errors) == 1 and "KeyError: 'REQUEST_METHOD'" in errors[0]


def test_service_options_use_the_logger_and_follow_access_log():
    on, off = gunicorn_options(Config()), gunicorn_options(Config(ACCESS_LOG=False))
    assert on["logger_class"] is AccessLogger and on["accesslog"] == "-"
    assert off["logger_class"] is AccessLogger and off["accesslog"] is None


def test_serve_application_applies_the_same_options():
    """`accident-api serve` configures gunicorn from gunicorn_options too."""
    from accident_api.gunicorn_app import ServiceApplication

    for config in (Config(), Config(ACCESS_LOG=False)):
        cfg = ServiceApplication(config).cfg
        assert cfg.logger_class is AccessLogger
        assert cfg.accesslog == gunicorn_options(config)["accesslog"]
        assert cfg.access_log_format == COMBINED_FORMAT
