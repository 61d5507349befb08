"""Training defaults, importable without scikit-learn: `accident-api`'s parser shows them.

`model.train` re-exports them; `model.cli` reads them from here so that building the command
line (`accident-api serve` included, which runs gunicorn in the same process) imports neither
scikit-learn, skl2onnx, onnx nor pandas.
"""

SEED = 42
TEST_SIZE = 0.2
# Share of the non-test rows held out from the forest to fit its calibration map on (3,200
# of 20,000 synthetic accidents). Shares from 0.2 to 0.5 gave the same served Brier score and
# ROC-AUC within their noise there (docs/model.md, Calibration): the smallest one is kept.
CALIBRATION_SIZE = 0.2
# Chosen with bench/model_selection.py (docs/model.md, Hyper-parameters): ROC-AUC within noise
# of the best setting on synthetic data and on the real sample, at about an eighth of the
# unrestricted forest's size on disk and a fraction of its memory and scikit-learn latency.
DEFAULT_HYPERPARAMETERS = {
    "n_estimators": 50,
    "max_depth": 12,
    "min_samples_leaf": 5,
    "max_features": "sqrt",
    "class_weight": None,
}
