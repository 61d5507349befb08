"""The printed table: one row per server, ratios to the seed (a) and the ceiling (d)."""
from bench.configs import CONFIGS

_COLUMNS = ("server", "wrk req/s", "p50 ms", "p99 ms", "x a", "% of d", "CPU ms/req",
            "open req/s", "open p50", "open p99", "load/run.py req/s", "p50", "p99",
            "batch rows/s", "PSS MB", "anon PSS MB", "USS MB", "1 worker RSS MB")


def rows(summary):
    """Table rows (lists of strings) for the servers in `summary`, in config order."""
    seed, ceiling = _rps(summary, "a"), _rps(summary, "d")
    table = []
    for config in CONFIGS:
        row = summary.get(config.key)
        if row is None:
            continue
        rps = row["wrk.rps"]
        table.append([
            f"({config.key}) {config.label}", _num(rps, 0), _num(row["wrk.p50_ms"], 2),
            _num(row["wrk.p99_ms"], 2),
            _num(rps / seed, 1) if rps and seed else "-",
            _num(100 * rps / ceiling, 0) if rps and ceiling else "-",
            _num(row["wrk.cpu_ms_per_request"], 2),
            _open_rate(row, "openloop"), _num(row["openloop.p50_ms"], 2),
            _num(row["openloop.p99_ms"], 2),
            _open_rate(row, "open"), _num(row["open.p50_ms"], 2), _num(row["open.p99_ms"], 2),
            _num(row["batch.rows_per_s"], 0), _num(row["memory.pss_mb"], 0),
            _num(row["memory.anon_pss_mb"], 0), _num(row["memory.uss_mb"], 0),
            _num(row["memory.worker_rss_mb"], 0),
        ])
    return table


def markdown(summary):
    """The table as GitHub markdown (for the README)."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(summary)]
    return "\n".join(lines)


def text(summary):
    """The table as aligned plain text (for the terminal)."""
    table = [list(_COLUMNS)] + rows(summary)
    widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in table)


def target_lines(verdicts):
    """One line per target: status, value vs limit, description."""
    return [f"{v['status']:>4}  {_num(v['value'], 3):>8} {v['op']} {v['limit']:g}  {v['target']}"
            for v in verdicts]


def _rps(summary, key):
    return summary.get(key, {}).get("wrk.rps")


def _open_rate(row, client):
    """Achieved open-model rate / the target rate it was asked for."""
    if row[f"{client}.rps"] is None:
        return "-"
    return f"{row[f'{client}.rps']:,.0f}/{row[f'{client}.target_rate']:,.0f}"


def _num(value, digits):
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    return f"{value:,.{digits}f}"
