"""The README and docs/ against the code: links and anchors, the configuration table, the
metrics table (checked against a live scrape) and the make targets they mention."""
import re
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accident_api.config import Config
from accident_api.schemas import SEED_RECORD

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 15_000  # bytes: the README is for users; details belong in docs/

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MAKE = re.compile(r"(?:^|[\s;&|(])make[ \t]+([A-Za-z][\w-]*)", re.M)
MAKEFILE_TARGET = re.compile(r"^([A-Za-z0-9][\w.-]*)[ \t]*:(?!=)", re.M)


def prose(text: str) -> str:
    """The text GitHub renders as markdown: fenced code blocks and HTML comments removed."""
    return COMMENT.sub("", FENCE.sub("", text))


def code(text: str) -> str:
    """Everything written as code: fenced blocks and inline code spans."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    spans = [m.group(2) for m in INLINE_CODE.finditer(FENCE.sub("", text))]
    return "\n".join(blocks + spans)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: rendered text, lower-case, punctuation dropped, spaces to
    hyphens (its rule keeps letters, digits, `_` and `-`)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = INLINE_CODE.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set:
    """Every heading anchor of a document; a repeated one gets -1, -2, ... as on GitHub."""
    seen, found = Counter(), set()
    for match in HEADING.finditer(prose(path.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def links(path: Path) -> list:
    """The targets of the document's markdown links and images, outside code."""
    text = INLINE_CODE.sub("", prose(path.read_text(encoding="utf-8")))
    return [match.group(1) for match in LINK.finditer(text)]


def section(path: Path, title: str) -> str:
    """The text under the level-2 heading `title`, up to the next level-2 heading."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"{path.name} has no '## {title}' section"
    return match.group(1)


def table_rows(text: str) -> list:
    """The body rows of the markdown tables in `text`, as lists of cells."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            rows.pop()  # the line above was the header
            continue
        rows.append(cells)
    return rows


def backticked(cell: str) -> list:
    """The `code` spans of a table cell, in order."""
    return re.findall(r"`([^`]+)`", cell)


# --- links and anchors -------------------------------------------------------------------

def test_every_document_links_somewhere():
    assert all(links(path) for path in DOCUMENTS), "a page without links is an island"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path):
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with that anchor in {destination.name}")
    assert not broken, broken


def test_github_anchor_rules():
    assert slug("Calibration (`model/calibration.py`, `model/evaluation.py`)") == \
        "calibration-modelcalibrationpy-modelevaluationpy"
    assert slug("Feedback: `POST /feedback`") == "feedback-post-feedback"
    assert slug("Hyper-parameters, with evidence") == "hyper-parameters-with-evidence"
    assert slug("[Données](x.md) réelles") == "données-réelles"


def test_repeated_headings_get_numbered_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Notes\n\n```\n# Notes\n```\n\n### Notes\n")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}


def test_the_readme_stays_short():
    assert README.stat().st_size <= README_LIMIT


# --- the configuration table -------------------------------------------------------------

class RecordingEnvironment(Mapping):
    """An empty environment that notes every variable asked for."""

    def __init__(self):
        self.asked = set()

    def __getitem__(self, name):
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


def configuration_table() -> dict:
    """{variable: default cell} of the README's configuration table."""
    rows = table_rows(section(README, "Configuration"))
    return {name: row[1] for row in rows for name in backticked(row[0])}


def test_the_configuration_table_lists_exactly_the_variables_config_reads():
    environment = RecordingEnvironment()
    Config.from_env(environment)
    documented = set(configuration_table())
    assert "MODEL_PATH" in environment.asked
    assert not environment.asked - documented, f"read but not in the table: " \
        f"{sorted(environment.asked - documented)}"
    assert not documented - environment.asked, f"in the table but never read: " \
        f"{sorted(documented - environment.asked)}"


def test_the_configuration_table_gives_configs_defaults():
    defaults = Config()
    wrong = []
    for name, cell in configuration_table().items():
        default, shown = getattr(defaults, name), backticked(cell)
        if isinstance(default, bool):
            expected_ok = shown[:1] == [str(int(default))]
        elif isinstance(default, (int, str)):
            expected_ok = shown[:1] == [str(default)]
        elif isinstance(default, tuple) and default:  # bucket edges, abbreviated with "…"
            edges = [float(e) for e in shown[0].split(",") if e not in ("…", "...")]
            expected_ok = (edges[0] == default[0] and edges[-1] == default[-1]
                           and set(edges) <= set(default))
        else:  # no value: an empty default or one computed at start
            expected_ok = True
        if not expected_ok:
            wrong.append(f"{name}: README says {cell}, Config has {default!r}")
    assert not wrong, wrong


# --- the metrics table -------------------------------------------------------------------

def metrics_table() -> dict:
    """{metric: (type, set of label names)} of the README's metrics table."""
    rows = table_rows(section(README, "Metrics"))
    return {backticked(row[0])[0]: (row[1].split()[0], set(backticked(row[2]))) for row in rows}


def family_name(family) -> str:
    """The exported name: prometheus_client reports a counter's family without `_total`."""
    return family.name + "_total" if family.type == "counter" else family.name


def test_the_metrics_table_is_every_metric_the_service_defines(app):
    # the `app` fixture has built the service's metrics; the default registry also holds
    # prometheus_client's process, platform and gc collectors, which the service does not
    # export (its sidecar serves the multiprocess files only)
    library = {family_name(f) for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR,
                                                GC_COLLECTOR) for f in collector.collect()}
    defined = {family_name(f): f.type for f in REGISTRY.collect()
               if family_name(f) not in library}
    documented = metrics_table()
    assert not set(defined) - set(documented), \
        f"defined but not in the README's metrics table: {sorted(set(defined) - set(documented))}"
    assert not set(documented) - set(defined), \
        f"in the README's metrics table but never defined: {sorted(set(documented) - set(defined))}"
    assert {name: kind for name, (kind, _) in documented.items()} == defined


# Series that no request from outside can create: they appear at a fault.
FAULT_ONLY = {
    "flask_http_request_exceptions_total": "an unexpected exception in a view",
    "prediction_log_dropped_total": "a full log queue or a database that refuses rows",
}


def live_families(server) -> dict:
    """{metric: (type, label names)} of the sidecar's exposition now."""
    families = {}
    for family in text_string_to_metric_families(server.scrape()):
        if family.samples:
            labels = {name for sample in family.samples for name in sample.labels} - {"le"}
            families[family_name(family)] = (family.type, labels)
    return families


@pytest.mark.integration
def test_a_live_scrape_exports_exactly_the_metrics_table(live_server):
    documented = metrics_table()
    url = live_server.url
    answer = requests.post(f"{url}/predict", json={**SEED_RECORD, "victim_age": None},
                           timeout=10)
    assert answer.status_code == 200 and answer.json()["imputed"] == ["victim_age"]
    batch = requests.post(f"{url}/predict/batch", json={"records": [SEED_RECORD] * 2},
                          timeout=10)
    assert batch.status_code == 200
    feedback = requests.post(f"{url}/feedback", json={
        "prediction_id": answer.json()["prediction_id"], "actual": 1}, timeout=10)
    assert feedback.status_code == 200 and feedback.json()["summary"]["recorded"] == 1
    unknown = requests.post(f"{url}/feedback", json={
        "prediction_id": "00000000-0000-0000-0000-000000000000", "actual": 0}, timeout=10)
    assert unknown.status_code == 404
    bad = requests.post(f"{url}/predict", json={**SEED_RECORD, "catu": 8}, timeout=10)
    assert bad.status_code == 422

    expected = set(documented) - set(FAULT_ONLY)
    deadline = time.monotonic() + 15
    while not expected <= set(live := live_families(live_server)):
        assert time.monotonic() < deadline, f"never exported: {sorted(expected - set(live))}"
        time.sleep(0.05)
    undocumented = set(live) - set(documented)
    assert not undocumented, f"exported but not in the README's metrics table: {undocumented}"
    assert {name: documented[name] for name in live} == live  # types and labels


# --- make targets ------------------------------------------------------------------------

def test_every_make_target_the_documents_mention_exists():
    targets = set(MAKEFILE_TARGET.findall((ROOT / "Makefile").read_text()))
    mentioned = {(path.name, target) for path in DOCUMENTS
                 for target in MAKE.findall(code(path.read_text(encoding="utf-8")))}
    assert {"run", "test"} <= {target for name, target in mentioned if name == README.name}
    missing = sorted(f"{name}: make {target}" for name, target in mentioned
                     if target not in targets)
    assert not missing, missing
