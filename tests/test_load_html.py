"""load/run.py --html: one self-contained file, checked in headless Chromium against the
JSON report of the same run."""
import json
import re

import pytest

from load import html_report
from load import run as cli
from load.report import PERCENTILES, build
from load.runner import RunResult, Schedule
from load.stats import Stats
from tests.fixtures.browser import file_url

VALID = '{"lum": 1, "vma": 50, "lat": 45.0}'
OUT_OF_DOMAIN = '{"lum": 99, "vma": 50, "lat": 45.0}'    # the fake API answers 422
MIX = "valid=0.7,invalid=0.1,notfound=0.1,batch=0.1"


def field_value(text: str):
    """A figure as the page shows it: 1,234 | 0.5 | 12.3400 % | - (none)."""
    text = text.strip()
    if text == "-":
        return None
    if text.endswith("%"):
        return float(text[:-1].replace(",", "")) / 100
    return float(text.replace(",", ""))


def at_pointer(document, pointer: str):
    for key in pointer.lstrip("/").split("/"):
        document = document[key.replace("~1", "/").replace("~0", "~")]
    return document


def shown_fields(page, report) -> dict:
    """{JSON pointer: text} of every figure on the page, each checked against the report."""
    shown = dict(page.evaluate("[...document.querySelectorAll('[data-field]')]"
                               ".map(e => [e.dataset.field, e.textContent])"))
    for pointer, text in shown.items():
        assert field_value(text) == pytest.approx(at_pointer(report, pointer)), pointer
    return shown


@pytest.fixture
def html_run(fake_api, tmp_path):
    """A 3 s run with every kind and some unexpected answers: (json report, html path)."""
    records = tmp_path / "records.jsonl"
    records.write_text(f"{VALID}\n{OUT_OF_DOMAIN}\n")
    out, page = tmp_path / "report.json", tmp_path / "report.html"
    code = cli.main(["--url", fake_api.url, "--rate", "40", "--duration", "3", "--quiet",
                     "--mix", MIX, "--records", str(records), "--json", str(out),
                     "--html", str(page)])
    report = json.loads(out.read_text())
    assert code == 0 and report["errors"]["count"] > 0, report["errors"]
    return report, page


@pytest.mark.integration
def test_report_opens_offline_without_errors_and_matches_the_json(html_run, browser):
    report, path = html_run
    page = browser.open(file_url(path))

    assert page.console_errors() == []
    assert page.requested_urls() == [file_url(path)]       # nothing fetched at view time
    # every chart drew its lines: each svg has series paths, at least one of them non-empty
    lengths = page.evaluate("[...document.querySelectorAll('svg.chart')].map(svg => "
                            "[...svg.querySelectorAll('path.series')]"
                            ".map(p => p.getTotalLength()))")
    assert len(lengths) == 5 and all(any(n > 0 for n in chart) for chart in lengths), lengths
    titles = page.evaluate("[...document.querySelectorAll('figcaption')].map(f => f.textContent)")
    assert titles == ["Target and achieved rate", "Latency from the intended send time",
                      "Errors by status", "Errors by kind of request",
                      "Requests in flight (sent, not yet answered)"]
    series = page.evaluate("[...document.querySelectorAll('path.series')]"
                           ".map(p => p.dataset.series)")
    assert {"target", "sent", "p50", "p95", "p99", "422", "valid", "most in flight"} <= set(series)

    # every figure on the page is the JSON report's, and the summary tables are all there
    shown = shown_fields(page, report)
    expected = {f"/latency_ms/{name}" for name in ("min",) + PERCENTILES}
    expected |= {"/dropped", "/late", "/sent", "/scheduled", "/achieved_rate", "/target_rate",
                 "/errors/count", "/errors/rate", "/unfinished", "/cancelled"}
    expected |= {f"/by_status/{label}" for label in report["by_status"]}
    expected |= {f"/by_kind/{kind.replace('/', '~1')}/{label}"
                 for kind, counts in report["by_kind"].items() for label in counts}
    expected |= {f"/errors/unexpected/{what}" for what in report["errors"]["unexpected"]}
    assert expected <= set(shown), expected - set(shown)
    assert "/latency_ms/p99.9" in shown and shown["/late"] == str(report["late"])

    # the run's parameters, and the JSON itself embedded
    parameters = dict(page.evaluate(
        "[...document.querySelectorAll('#parameters tr')]"
        ".map(r => [r.cells[0].textContent, r.cells[1].textContent])"))
    assert parameters["url"] == report["settings"]["url"]
    assert parameters["rate"] == "40.0" and parameters["duration_s"] == "3.0"
    assert parameters["mix"].startswith("valid=0.7, invalid=0.1")
    embedded = page.evaluate("JSON.parse(document.getElementById('load-report').textContent)")
    assert embedded == report


def _report(kind="valid", url="http://127.0.0.1:9") -> dict:
    stats = Stats()
    for i in range(30):
        status = 200 if i % 10 else 500
        stats.record(kind, frozenset({200}), status, None, 0.002 + i / 1000, i == 3, at=i / 10)
        stats.timeline.send(i / 10, dropped=False, in_flight=1 + i % 3)
    result = RunResult(stats, scheduled=30, sent=30, send_window=3.0, elapsed=3.1,
                       started_at=1_800_000_000.0)
    return build(result, Schedule(10, 3), {"url": url}, None, None)


def test_markup_in_names_cannot_break_out_of_the_page():
    report = _report(kind="</script><script>alert(1)</script>", url="http://x/<b>")
    page = html_report.render(report)
    assert page.count("<script") == page.count("</script>") == 1
    assert "<b>" not in page and "&lt;b&gt;" in page
    data = re.search(r"<script type='application/json' id='load-report'>(.*?)</script>",
                     page, re.S).group(1)
    assert json.loads(data) == report


def test_no_script_and_no_fetch_are_allowed_by_the_page():
    page = html_report.render(_report())
    assert f"content=\"{html_report.CSP}\"" in page
    assert html_report.CSP == "default-src 'none'; style-src 'unsafe-inline'"
    assert "<script" not in page.replace("<script type='application/json'", "")
    assert not re.search(r"(src|href)=", page)


def test_a_new_kind_of_request_gets_its_rows_and_series_unchanged():
    """feedback, say: its sends and accepted answers are in the tables and the timeline."""
    report = _report(kind="feedback")
    assert report["timeline"]["by_kind"]["feedback"]["requests"] == [10.0, 10.0, 10.0]
    assert report["timeline"]["by_kind"]["feedback"]["expected"] == [9.0, 9.0, 9.0]
    page = html_report.render(report)
    assert "data-field='/by_kind/feedback/200'>27<" in page
    errors_by_kind = html_report.charts(report)[3]
    assert [(s.name, s.values) for s in errors_by_kind.series] == [("feedback", [1.0] * 3)]


@pytest.mark.integration
def test_a_replay_with_feedback_adds_its_tables_and_chart(fake_api, tmp_path, browser):
    from model import synth

    synth.write(tmp_path / "raw", 80, seed=5)
    fake_api.check_records = False
    out, page_path = tmp_path / "report.json", tmp_path / "report.html"
    code = cli.main(["--url", fake_api.url, "--rate", "80", "--quiet", "--replay",
                     str(tmp_path / "raw"), "--feedback", "0.5,0.3", "--concept-drift",
                     "--json", str(out), "--html", str(page_path)])
    report = json.loads(out.read_text())
    assert code == 0 and report["feedback"]["sent"] > 0
    page = browser.open(file_url(page_path))
    assert page.console_errors() == []
    titles = page.evaluate("[...document.querySelectorAll('figcaption')].map(f => f.textContent)")
    assert titles[-1] == "Follow-up requests (feedback)" and len(titles) == 6
    lengths = page.evaluate("[...document.querySelectorAll('svg.chart')].pop()"
                            ".querySelectorAll('path.series').length")
    assert lengths == 2
    shown = shown_fields(page, report)
    expected = {f"/replay/{name}" for name in ("accidents", "severe", "passes")}
    expected |= {f"/replay/predictions/{name}" for name in
                 ("requests", "answered", "not_answered")}
    expected |= {"/replay/concept_drift/accidents", "/follow_ups/scheduled",
                 "/follow_ups/sent"}
    expected |= {f"/feedback/{name}" for name in ("share", "delay_s", "chosen", "sent",
                                                  "dropped", "cancelled", "as_expected")}
    expected |= {f"/feedback/confusion/{cell}" for cell in ("tp", "fp", "tn", "fn")}
    expected |= {"/feedback/by_status/200", "/feedback/results/recorded"}
    assert expected <= set(shown), expected - set(shown)
    parameters = dict(page.evaluate(
        "[...document.querySelectorAll('#parameters tr')]"
        ".map(r => [r.cells[0].textContent, r.cells[1].textContent])"))
    assert parameters["feedback"] == "0.5,0.3" and parameters["concept_drift"] == "True"
    assert parameters["duration_s"] == "-"
