"""Build one report: Evidently's runs on a checked window, the results, the HTML page."""
from dataclasses import dataclass
from datetime import datetime, timezone

from model.report import evidently_report, results
from model.report.evidently_compat import quiet
from model.report.window import Window, quality_skipped


@dataclass
class Built:
    """A built report: its results (the ``--json`` document) and the page to save."""

    results: dict
    snapshot: object  # Evidently's Snapshot of both runs

    def html(self) -> str:
        """The self-contained HTML page: Evidently's scripts and styles inline."""
        with quiet():
            return self.snapshot.get_html_str(as_iframe=False)


def build(window: Window, reference, card: dict, since: datetime, until: datetime | None,
          min_labelled: int) -> Built:
    """Drift of ``window`` against ``reference``; quality of its labelled rows if enough."""
    skipped = quality_skipped(window.labelled, min_labelled)
    with quiet():
        drift = evidently_report.drift_run(window, reference)
        quality = None if skipped else evidently_report.quality_run(window, reference,
                                                                    float(card["threshold"]))
    summary = results.summary(
        card=card, reference_entry=card["artifacts"]["reference"], window=window, since=since,
        until=until, generated_at=datetime.now(timezone.utc).replace(tzinfo=None), drift=drift,
        quality_section=results.quality(quality, window, reference, skipped, min_labelled))
    return Built(summary, evidently_report.page(summary, drift, quality))
