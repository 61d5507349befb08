"""The forest as ONNX (skl2onnx, float64 input) and the parity check against scikit-learn."""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType

from model.evaluation import THRESHOLD
from model.features import FEATURES
from model.validation import PARITY_TOLERANCE


class ParityError(RuntimeError):
    """The ONNX export does not reproduce the scikit-learn forest on the held-out split."""


def _round_input_to_float32(onx):
    """Prefix the graph with Cast(float32) -> Cast(float64) on its input.

    scikit-learn trees compare ``float32(x) <= threshold`` (they cast X to float32 before
    predicting), while a double-input ONNX tree compares ``x <= threshold``: a value within a
    float32 ulp of a threshold then takes another branch (seen on real latitudes). Rounding the
    input the same way inside the graph makes every comparison identical to scikit-learn's.
    """
    graph = onx.graph
    source = graph.input[0].name
    for node in graph.node:
        node.input[:] = ["input_rounded" if name == source else name for name in node.input]
    casts = [
        helper.make_node("Cast", [source], ["input_float32"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["input_float32"], ["input_rounded"], to=TensorProto.DOUBLE),
    ]
    for position, node in enumerate(casts):
        graph.node.insert(position, node)
    return onx


def export_onnx(forest) -> bytes:
    """Convert the forest to ONNX: float64 ``input`` (n, 28), probabilities as a plain tensor."""
    onx = convert_sklearn(
        forest,
        initial_types=[("input", DoubleTensorType([None, len(FEATURES)]))],
        options={id(forest): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return _round_input_to_float32(onx).SerializeToString()


def check_parity(
    forest, onnx_bytes: bytes, rows: np.ndarray, calibration,
    tolerance: float = PARITY_TOLERANCE,
) -> dict:
    """Compare ONNX Runtime with scikit-learn on ``rows``; raise ParityError when they disagree.

    The forest's scores must agree within ``tolerance`` and the served classes (calibrated
    probability >= THRESHOLD) on every row. The calibrated probabilities' largest difference
    is recorded too: a steep segment of the map magnifies the scores' float32-level one.

    Returns
    -------
    dict
        rows, same_class (count), max_abs_diff_probability (forest scores),
        max_abs_diff_calibrated, tolerance, passed.
    """
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_scores = session.run(["probabilities"], {"input": rows})[0][:, 1].astype("float64")
    sk_scores = forest.predict_proba(rows)[:, 1]
    onnx_proba, sk_proba = calibration(onnx_scores), calibration(sk_scores)
    same = int(((onnx_proba >= THRESHOLD) == (sk_proba >= THRESHOLD)).sum())

    def largest(a, b):
        return float(np.max(np.abs(a - b))) if len(rows) else 0.0

    diff = largest(onnx_scores, sk_scores)
    parity = {
        "rows": int(len(rows)),
        "same_class": same,
        "max_abs_diff_probability": diff,
        "max_abs_diff_calibrated": largest(onnx_proba, sk_proba),
        "tolerance": tolerance,
        "passed": same == len(rows) and diff <= tolerance,
    }
    if not parity["passed"]:
        raise ParityError(
            f"ONNX export disagrees with scikit-learn on the held-out split: {parity}"
        )
    return parity
