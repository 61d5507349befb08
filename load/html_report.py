"""The run's report as one self-contained HTML file (`load/run.py --html FILE`).

Everything is in the file: the report's JSON (in a data block, the same document --json
writes), the summary tables the text report prints, the run's parameters and the charts
over time as plain SVG (load.svg_chart says why). A Content-Security-Policy forbids every
script and every fetch, so the page is the same offline as online. Each table cell holding
a figure of the JSON report names it (``data-field``, a JSON pointer), so a test can check
the page against the JSON. A new kind of request (feedback, say) needs no new data: its
sends and its expected answers ("accepted") are in the by-kind table and in the timeline's
per-kind series, its errors in the errors-by-kind chart. A replay (`--replay`) adds its
table, and feedback (`--feedback`) its table and a chart of its own.
"""
from __future__ import annotations

import json
from html import escape

from load import svg_chart
from load.report import PERCENTILES
from load.svg_chart import Chart, Series

CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:980px;color:#1b1b1b;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#555;margin:0 0 12px}.verdict{font-weight:600}.fail{color:#b00020}.pass{color:#1b6e20}
table{border-collapse:collapse;margin:4px 0 8px}
td,th{padding:3px 10px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th{font-weight:600;background:#f5f5f5}.grid{stroke:#e8e8e8}.frame{stroke:#777;fill:none}
.series{fill:none;stroke-width:2}.tick,.legend,.axis,.note{font:12px system-ui,sans-serif;fill:#333}
.note{fill:#777}figure{margin:8px 0 18px}figcaption{font-weight:600;margin-bottom:2px}
details{margin:8px 0}code{font-size:13px}
"""


def render(report: dict) -> str:
    """The whole HTML document for a report built by load.report.build."""
    settings = report["settings"]
    title = f"Load report: {settings.get('url', '')} at {report['started_at'] or ''}"
    body = [f"<h1>Load report</h1><p class='sub'>{escape(settings.get('url', ''))}, started "
            f"{escape(report['started_at'] or '-')} (UTC)</p>", _verdict(report),
            "<h2>Summary</h2>", _summary(report), "<h2>Latency</h2>", _latency(report),
            "<h2>Responses by status</h2>", _by_status(report),
            "<h2>Requests by kind</h2>", _by_kind(report), _unexpected(report),
            _replay(report), _feedback(report),
            "<h2>Over time</h2>", _charts(report), _timeline_table(report),
            "<h2>Parameters</h2>", _parameters(settings),
            "<h2>Data</h2><p>The JSON report (the same as <code>--json</code> writes) is in "
            "this file, in the <code>script#load-report</code> data block.</p>",
            f"<script type='application/json' id='load-report'>{_json(report)}</script>"]
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def _json(report: dict) -> str:
    # "<" only occurs inside JSON strings, where \u003c is the same character and cannot
    # end the script element ("</script") or change how it is parsed ("<!--")
    return json.dumps(report, indent=1).replace("<", "\\u003c")


def _pointer(*keys) -> str:
    return "/" + "/".join(str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def _cell(value, *keys, percent: bool = False) -> str:
    """A figure of the JSON report at ``keys``, shown as the JSON holds it."""
    if value is None:
        text = "-"
    elif percent:
        text = f"{value * 100:.4f} %"
    else:
        text = f"{value:,}"
    return f"<td class='n' data-field='{escape(_pointer(*keys))}'>{text}</td>"


def _rows(rows, table_id: str = "") -> str:
    attribute = f" id='{table_id}'" if table_id else ""
    return f"<table{attribute}>" + "".join(f"<tr><th>{escape(name)}</th>{cell}</tr>"
                                           for name, cell in rows) + "</table>"


def _verdict(report: dict) -> str:
    gates = report["gates"]
    lines = []
    if report["interrupted"]:
        lines.append("<p class='verdict fail'>Interrupted: the figures are partial.</p>")
    for name, gate in gates.items():
        status, css = ("PASS", "pass") if gate["passed"] else ("FAIL", "fail")
        lines.append(f"<p class='verdict {css}'>gate {escape(name)}: {status} (actual "
                     f"{gate['actual']}, limit {gate['limit']})</p>")
    return "".join(lines)


def _summary(report: dict) -> str:
    errors = report["errors"]
    return _rows([
        ("target rate (req/s)", _cell(report["target_rate"], "target_rate")),
        ("achieved rate (req/s)", _cell(report["achieved_rate"], "achieved_rate")),
        ("send window (s)", _cell(report["send_window_s"], "send_window_s")),
        ("elapsed, with the wait for the last answers (s)",
         _cell(report["elapsed_s"], "elapsed_s")),
        ("scheduled", _cell(report["scheduled"], "scheduled")),
        ("sent", _cell(report["sent"], "sent")),
        ("dropped (no free worker, queue full)", _cell(report["dropped"], "dropped")),
        (f"late (started over {report['settings'].get('late_ms', '?')} ms after their slot)",
         _cell(report["late"], "late")),
        ("cancelled (Ctrl-C)", _cell(report["cancelled"], "cancelled")),
        ("unfinished (no answer by the end)", _cell(report["unfinished"], "unfinished")),
        *_follow_up_rows(report["follow_ups"]),
        ("responses", _cell(report["completed"], "completed")),
        ("transport failures", _cell(report["failed"], "failed")),
        ("errors", _cell(errors["count"], "errors", "count")),
        ("errors + dropped + unfinished", _cell(errors["gated"], "errors", "gated")),
        ("error rate (of scheduled)", _cell(errors["rate"], "errors", "rate", percent=True)),
    ]) + f"<p>{escape(errors['definition'])}.</p>"


def _follow_up_rows(follow: dict) -> list:
    """Requests the answers called for (feedback), when there were any."""
    if not follow["scheduled"]:
        return []
    kinds = ", ".join(follow["kinds"])
    return [(f"follow-ups ({kinds}) asked for",
             _cell(follow["scheduled"], "follow_ups", "scheduled")),
            ("follow-ups sent", _cell(follow["sent"], "follow_ups", "sent")),
            ("follow-ups dropped", _cell(follow["dropped"], "follow_ups", "dropped")),
            ("follow-ups cancelled (the run ended first)",
             _cell(follow["cancelled"], "follow_ups", "cancelled"))]


def _latency(report: dict) -> str:
    names = ("min",) + PERCENTILES
    head = "".join(f"<th>{name}</th>" for name in names)
    cells = "".join(_cell(report["latency_ms"][name], "latency_ms", name) for name in names)
    return (f"<p>Milliseconds from each request's intended send time (so a server that falls "
            f"behind shows as latency), every answered or failed request.</p>"
            f"<table><tr>{head}</tr><tr>{cells}</tr></table>")


def _by_status(report: dict) -> str:
    total = sum(report["by_status"].values()) or 1
    rows = "".join(f"<tr><th>{escape(label)}</th>{_cell(n, 'by_status', label)}"
                   f"<td class='n'>{100 * n / total:.1f} %</td></tr>"
                   for label, n in report["by_status"].items())
    return f"<table><tr><th>status</th><th>requests</th><th>share</th></tr>{rows}</table>"


def _by_kind(report: dict) -> str:
    rows = []
    for kind, counts in report["by_kind"].items():
        cells = ", ".join(f"{escape(label)}: <span data-field='"
                          f"{escape(_pointer('by_kind', kind, label))}'>{n:,}</span>"
                          for label, n in counts.items())
        rows.append(f"<tr><th>{escape(kind)}</th><td class='n'>{sum(counts.values()):,}</td>"
                    f"<td>{cells}</td></tr>")
    return ("<table><tr><th>kind</th><th>requests</th><th>by status</th></tr>"
            + "".join(rows) + "</table>")


def _unexpected(report: dict) -> str:
    unexpected = report["errors"]["unexpected"]
    if not unexpected:
        return "<p>No request ended in a status its kind does not expect.</p>"
    return "<h2>Unexpected outcomes</h2>" + _rows(
        (what, _cell(n, "errors", "unexpected", what)) for what, n in sorted(unexpected.items()))


def _replay(report: dict) -> str:
    replay = report.get("replay")
    if not replay:
        return ""
    drift = replay["concept_drift"]
    counts = replay["predictions"]
    rows = [("directory", f"<td>{escape(str(replay['dir']))}</td>"),
            ("BAAC year", f"<td>{replay['year']}</td>"),
            ("accidents read", _cell(replay["accidents"], "replay", "accidents")),
            ("severe (true outcome, as replayed)", _cell(replay["severe"], "replay", "severe")),
            ("passes", _cell(replay["passes"], "replay", "passes")),
            ("prediction requests", _cell(counts["requests"], "replay", "predictions",
                                          "requests")),
            ("answered with a prediction id", _cell(counts["answered"], "replay",
                                                    "predictions", "answered")),
            ("not answered (error or no answer)", _cell(counts["not_answered"], "replay",
                                                        "predictions", "not_answered"))]
    if drift:
        rows.append((f"concept drift: outcome flipped where {drift['segment']}",
                     _cell(drift["accidents"], "replay", "concept_drift", "accidents")))
    return "<h2>Replay</h2>" + _rows(rows, "replay")


def _feedback(report: dict) -> str:
    feedback = report.get("feedback")
    if not feedback:
        return ""
    rows = [("share of the answered predictions", _cell(feedback["share"], "feedback",
                                                        "share")),
            ("delay after the answer (s)", _cell(feedback["delay_s"], "feedback", "delay_s")),
            ("labels due (chosen and answered)", _cell(feedback["chosen"], "feedback",
                                                       "chosen")),
            ("sent", _cell(feedback["sent"], "feedback", "sent")),
            ("dropped (no free worker, queue full)", _cell(feedback["dropped"], "feedback",
                                                           "dropped")),
            ("cancelled (the run ended first)", _cell(feedback["cancelled"], "feedback",
                                                      "cancelled")),
            ("answered as expected (200)", _cell(feedback["as_expected"], "feedback",
                                                 "as_expected"))]
    rows += [(f"answered {label}", _cell(n, "feedback", "by_status", label))
             for label, n in feedback["by_status"].items()]
    rows += [(f"label {result}", _cell(n, "feedback", "results", result))
             for result, n in feedback["results"].items()]
    rows += [(f"recorded {cell}", _cell(n, "feedback", "confusion", cell))
             for cell, n in feedback["confusion"].items()]
    return ("<h2>Feedback</h2><p>The true outcome POSTed to /feedback for the chosen "
            "answered predictions; <em>recorded</em> labels are what the service counts in "
            "<code>model_feedback_total</code>, by confusion cell.</p>"
            + _rows(rows, "feedback"))


def _parameters(settings: dict) -> str:
    def show(value):
        if isinstance(value, dict):
            return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in value.items()) or "-"
        return "-" if value is None else str(value)
    return _rows(((name, f"<td>{escape(show(value))}</td>") for name, value in settings.items()),
                 "parameters")


def charts(report: dict) -> list[Chart]:
    """The charts over time, from the report's timeline."""
    line = report["timeline"]
    starts, width = line["t_s"], line["interval_s"]
    limit = 2 * report["settings"]["concurrency"]
    errors = [Series(label, values) for label, values in line["errors_by_status"].items()]
    if any(line["dropped_rate"]):
        errors.append(Series("dropped (client pool full)", line["dropped_rate"]))
    by_kind = [Series(kind, [r - e for r, e in zip(s["requests"], s["expected"])])
               for kind, s in line["by_kind"].items() if s["requests"] != s["expected"]]
    if any(line["follow_up_dropped_rate"]):
        errors.append(Series("follow-ups dropped (client pool full)",
                             line["follow_up_dropped_rate"]))
    follow_kinds = set(report["follow_ups"]["kinds"])
    none = [0.0] * len(starts)
    follow_charts = [Chart(
        f"Follow-up requests ({', '.join(sorted(follow_kinds))})", "requests/s", starts,
        width, [Series("sent", line["follow_up_sent_rate"], "#0072B2"),
                Series("answered as expected", _expected_rate(
                    line, set(line["by_kind"]) - follow_kinds), "#009E73")])
    ] if follow_kinds else []
    return [
        Chart("Target and achieved rate", "requests/s", starts, width, [
            Series("sent", line["sent_rate"], "#0072B2"),
            Series("answered as expected", _expected_rate(line, follow_kinds), "#009E73"),
            Series("target", line["target_rate"], "#000000", dashed=True)]),   # on top
        Chart("Latency from the intended send time", "ms", starts, width, [
            Series(name, line["latency_ms"][name], color) for name, color in
            (("p50", "#009E73"), ("p95", "#E69F00"), ("p99", "#D55E00"))]),
        Chart("Errors by status", "errors/s", starts, width,
              errors or [Series("errors", none, "#009E73")],
              "" if errors else "no errors, no dropped sends"),
        Chart("Errors by kind of request", "errors/s", starts, width,
              by_kind or [Series("errors", none, "#009E73")], "" if by_kind else "no errors"),
        Chart("Requests in flight (sent, not yet answered)", "requests", starts, width, [
            Series("most in flight", line["in_flight_max"], "#0072B2"),
            Series(f"limit: workers + queue ({limit})", [limit] * len(starts), "#999999",
                   dashed=True)]),
        *follow_charts,
    ]


def _expected_rate(line: dict, leave_out: set) -> list:
    """Requests answered as expected per second, the kinds in ``leave_out`` apart."""
    per_kind = [s["expected"] for kind, s in line["by_kind"].items() if kind not in leave_out]
    return [round(sum(values), 3) for values in zip(*per_kind)] if per_kind else \
        [0.0] * len(line["t_s"])


def _charts(report: dict) -> str:
    return "".join(f"<figure><figcaption>{escape(chart.title)}</figcaption>"
                   f"{svg_chart.render(chart)}</figure>" for chart in charts(report))


def _timeline_table(report: dict) -> str:
    line = report["timeline"]
    columns = [("t (s)", line["t_s"]), ("target/s", line["target_rate"]),
               ("sent/s", line["sent_rate"]), ("dropped/s", line["dropped_rate"]),
               ("late/s", line["late_rate"]), ("most in flight", line["in_flight_max"])]
    columns += [(f"{name} ms", values) for name, values in line["latency_ms"].items()]
    columns += [(f"{label}/s", values) for label, values in line["by_status"].items()]
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in columns)
    rows = "".join("<tr>" + "".join(f"<td class='n'>{'-' if v is None else f'{v:g}'}</td>"
                                    for v in row) + "</tr>"
                   for row in zip(*(values for _, values in columns)))
    return (f"<details><summary>The same figures per {line['interval_s']:g} s interval "
            f"(each request counted in the interval it was due)</summary>"
            f"<table><tr>{head}</tr>{rows}</table></details>")
