"""An Evidently metric for what Evidently lacks: calibration, as the model card measures it.

Its value is the expected calibration error of ``model.evaluation`` (10 equal-width bins, the
card's ``ece``), its widget the reliability diagram of the window beside the reference's,
with both Brier scores: the served probability is calibrated, and this shows whether it still
is on the labelled traffic. Built on Evidently's documented custom-metric classes.
"""
import plotly.graph_objects as go

from model.evaluation import calibration_figures
from model.report.evidently_compat import (
    SingleValueCalculation,
    SingleValueMetric,
    plotly_figure,
)


class CalibrationError(SingleValueMetric):
    """Expected calibration error of ``probability`` against ``target`` (10 equal-width bins)."""

    class Config:
        type_alias = "accident-api:metric_v2:CalibrationError"

    target: str = "actual"
    probability: str = "probability"


class CalibrationErrorCalculation(SingleValueCalculation[CalibrationError]):
    """ECE of the current and the reference data; the reliability diagram of both."""

    def calculate(self, context, current_data, reference_data):
        current = self._figures(current_data)
        reference = None if reference_data is None else self._figures(reference_data)
        result = self.result(current["ece"])
        result.widget = [plotly_figure(title=self.display_name(),
                                       figure=reliability_figure(current, reference))]
        return result, None if reference is None else self.result(reference["ece"])

    def _figures(self, data) -> dict:
        return calibration_figures(data.column(self.metric.target).data.to_numpy(),
                                   data.column(self.metric.probability).data.to_numpy())

    def display_name(self) -> str:
        return "Calibration: expected calibration error (10 equal-width bins of P(severe))"


def reliability_figure(current: dict, reference: dict | None) -> go.Figure:
    """Observed share severe against mean P(severe) per non-empty bin, and the diagonal."""
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                line={"dash": "dot", "color": "grey"}))
    for name, figures in (("current", current), ("reference", reference)):
        if figures is None:
            continue
        bins = [b for b in figures["reliability"] if b["rows"]]
        figure.add_trace(go.Scatter(
            x=[b["mean_predicted"] for b in bins], y=[b["observed"] for b in bins],
            mode="lines+markers", name=f"{name}: Brier {figures['brier']:.4f}, "
                                       f"ECE {figures['ece']:.4f}",
            text=[f"{b['rows']} rows with P(severe) {b['lower']}-{b['upper']}" for b in bins]))
    figure.update_layout(xaxis_title="mean P(severe) in the bin", yaxis_title="share severe",
                         xaxis_range=[0, 1], yaxis_range=[0, 1])
    return figure
