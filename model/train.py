"""Training: split, impute, fit, calibrate, evaluate against a baseline, export joblib + ONNX +
calibration map + reference dataset + model card.

Several BAAC years can be trained on at once. Without a test year, every row goes into one
stratified random split (train / calibration / test). With ``test_year``, the model is fit,
calibrated and random-split evaluated on the years before it only, then evaluated on each
later year as a deployed model would meet them; the card records both, and the row counts of
every year. Every metric describes what is served: the calibrated probability at the card's
threshold.
"""

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

from model import baac, synth
from model.calibration import fit_isotonic, write_calibration
from model.card import (
    CALIBRATION_FILE,
    JOBLIB_FILE,
    ONNX_FILE,
    REFERENCE_FILE,
    library_versions,
    write_card,
)
from model.dataset import build_dataset, check_test_year, row_counts, split_rows, sum_reports
from model.evaluation import (  # noqa: F401  (re-exported: model.train.evaluate)
    CALIBRATION_BINS,
    THRESHOLD,
    evaluate,
    evaluate_later_years,
    evaluate_served,
)
from model.features import FEATURE_SPECS, FEATURES
from model.hashing import sha256_file
from model.impute import Imputer
from model.onnx_export import (  # noqa: F401  (re-exported: model.train.ParityError)
    ParityError,
    check_parity,
    export_onnx,
)
from model.reference import build_reference
from model.reference_data import reference_entry, reference_frame, write_reference
from model.train_defaults import (  # noqa: F401  (re-exported: model.train.SEED, ...)
    CALIBRATION_SIZE,
    DEFAULT_HYPERPARAMETERS,
    SEED,
    TEST_SIZE,
)

NAME = "accident-severity-rf"


def _log(message: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _feature_entries(train_rows: np.ndarray) -> list:
    """Card entries per feature: the spec (valid domain) plus the range seen in training."""
    entries = []
    for i, spec in enumerate(FEATURE_SPECS):
        entries.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "dtype": spec.dtype,
                "description": spec.description,
                "source": spec.source,
                "codes": list(spec.codes) if spec.codes is not None else None,
                "minimum": spec.minimum,
                "maximum": spec.maximum,
                "seen_min": float(train_rows[:, i].min()),
                "seen_max": float(train_rows[:, i].max()),
            }
        )
    return entries


def _save_artifacts(forest, calibration, test_rows: np.ndarray, reference, out_dir: Path) -> dict:
    """Export to ONNX, check parity (raises before anything is written), write the four files.

    Returns the card's ``artifacts`` entry: file names, sha256, the parity result and the
    reference dataset's rows and size.
    """
    onnx_bytes = export_onnx(forest)
    parity = check_parity(forest, onnx_bytes, test_rows, calibration)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(forest, out_dir / JOBLIB_FILE, compress=3)
    (out_dir / ONNX_FILE).write_bytes(onnx_bytes)
    write_calibration(out_dir / CALIBRATION_FILE, calibration)
    write_reference(out_dir / REFERENCE_FILE, reference)
    return {
        "joblib": {"file": JOBLIB_FILE, "sha256": sha256_file(out_dir / JOBLIB_FILE)},
        "onnx": {"file": ONNX_FILE, "sha256": sha256_file(out_dir / ONNX_FILE), "parity": parity},
        "calibration": {"file": CALIBRATION_FILE,
                        "sha256": sha256_file(out_dir / CALIBRATION_FILE)},
        "reference": reference_entry(out_dir / REFERENCE_FILE, reference,
                                     sha256_file(out_dir / REFERENCE_FILE)),
    }


def _calibration_entry(calibration, rows: int, test: dict, by_test_year: dict) -> dict:
    """The card's ``calibration``: the map's size and origin, Brier/ECE/reliability before and
    after it on the test split and on each test year."""
    return {
        "method": "isotonic",
        "fit_on": "the calibration split: rows of the fit years held out from both the "
                  "forest's training rows and the test split",
        "rows": rows,
        "breakpoints": len(calibration),
        "bins": {"count": CALIBRATION_BINS, "strategy": "equal-width"},
        "test": test,
        "by_test_year": by_test_year,
    }


def train(
    tables_by_year: dict,
    out_dir,
    source: dict,
    hyperparameters: dict | None = None,
    seed: int = SEED,
    test_size: float = TEST_SIZE,
    test_year: int | None = None,
    calibration_size: float = CALIBRATION_SIZE,
    log=_log,
) -> dict:
    """Build features, fit, calibrate and evaluate the forest, write model.joblib, model.onnx,
    calibration.json, reference.parquet (the test split as served) and the card.

    Parameters
    ----------
    tables_by_year : dict
        year -> the four raw BAAC tables of that year (``model.baac.read_raw``).
    out_dir : str or Path
        Directory that receives the files (created if needed).
    source : dict
        Data provenance for the card (kind, years, file hashes, ...).
    hyperparameters : dict, optional
        RandomForestClassifier parameters overriding DEFAULT_HYPERPARAMETERS.
    seed, test_size : int, float
        Stratified split seed and held-out share (the forest uses the same seed).
    test_year : int, optional
        Fit on the years before it only and evaluate on it and every later year read
        (``metrics_by_test_year`` in the card); by default all years are fit on.
    calibration_size : float
        Share of the non-test rows the calibration map is fitted on (the forest never sees them).

    Returns
    -------
    dict
        The model card written to ``out_dir``.
    """
    started = time.perf_counter()
    params = {**DEFAULT_HYPERPARAMETERS, **(hyperparameters or {}), "random_state": seed}
    years = sorted(tables_by_year)
    check_test_year(years, test_year)
    accidents = sum(len(tables["caracteristiques"]) for tables in tables_by_year.values())
    log(f"building features of {years} from {accidents} accidents")
    data = build_dataset(tables_by_year)
    later = data.year >= test_year if test_year else np.zeros(len(data.year), dtype=bool)
    fit = data.select(~later)
    if fit.target.nunique() < 2:
        raise ValueError(f"need both classes to train; got {fit.target.value_counts().to_dict()}")
    total = sum_reports(data.reports)
    log(
        f"{total['rows_out']} usable accidents; unusable: no users {total['dropped_no_users']}, "
        f"unknown severity {total['dropped_unknown_severity']}; values set missing: "
        f"{sum(total['missing'].values())}"
    )
    split = split_rows(fit.target.to_numpy(), test_size, calibration_size, seed)
    parts = [fit.take(positions) for positions in split]
    imputer = Imputer().fit(parts[0].frame)  # learned on the forest's training rows only
    train_rows, calibration_rows, test_rows = (
        imputer.transform(part.frame).to_numpy("float64") for part in parts)
    y_train, y_calibration, y_test = (part.target.to_numpy() for part in parts)
    log(f"fitting RandomForest {params} on {len(train_rows)} rows")
    forest = RandomForestClassifier(**params, n_jobs=-1).fit(train_rows, y_train)
    forest.set_params(n_jobs=1)  # serving: one thread per call, no per-call pool

    def score(rows):
        return forest.predict_proba(rows)[:, 1]

    calibration = fit_isotonic(score(calibration_rows), y_calibration)
    test_scores = score(test_rows)
    metrics, calibration_test = evaluate_served(y_test, test_scores, calibration)
    reference = reference_frame(test_rows, y_test, calibration(test_scores), THRESHOLD)
    log(
        f"calibrated on {len(calibration_rows)} rows ({len(calibration)} breakpoints): held-out "
        f"ECE {calibration_test['before']['ece']:.3f} -> {metrics['ece']:.3f}, "
        f"Brier {calibration_test['before']['brier']:.4f} -> {metrics['brier']:.4f}"
    )
    log(
        f"held-out ROC-AUC {metrics['roc_auc']:.3f}, F1 {metrics['f1']:.3f}, "
        f"accuracy {metrics['accuracy']:.3f} "
        f"(majority baseline accuracy {metrics['baseline']['accuracy']:.3f})"
    )
    by_test_year, calibration_by_year = evaluate_later_years(
        score, calibration, imputer, data.select(later))
    for year, result in by_test_year.items():
        auc = "n/a (one class)" if result["roc_auc"] is None else f"{result['roc_auc']:.3f}"
        log(f"test year {year} ({result['rows']} accidents): ROC-AUC {auc}, "
            f"F1 {result['f1']:.3f}, accuracy {result['accuracy']:.3f}")
    log("exporting to ONNX and checking parity on the held-out split")
    out_dir = Path(out_dir)
    artifacts = _save_artifacts(forest, calibration, test_rows, reference, out_dir)
    card = {
        "name": NAME,
        "version": artifacts["joblib"]["sha256"][:12],
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "rows": row_counts(data, split, test_year),
        "class_balance": {
            "train_severe_share": float(y_train.mean()),
            "calibration_severe_share": float(y_calibration.mean()),
            "test_severe_share": float(y_test.mean()),
            "severe": int(fit.target.sum()),
            "not_severe": int((1 - fit.target).sum()),
        },
        "hyperparameters": params,
        "split": {
            "seed": seed,
            "test_size": test_size,
            "calibration_size": calibration_size,
            "stratified": True,
            "fit_years": sorted(set(fit.year.tolist())),
            "test_year": test_year,
        },
        "threshold": THRESHOLD,
        "metrics": metrics,
        "metrics_by_test_year": by_test_year,
        "calibration": _calibration_entry(
            calibration, len(calibration_rows), calibration_test, calibration_by_year),
        "libraries": library_versions(),
        "artifacts": artifacts,
        "imputation": imputer.fill_values_,
        "features": _feature_entries(train_rows),
        "reference": {name: build_reference(train_rows[:, i]) for i, name in enumerate(FEATURES)},
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    write_card(out_dir, card)
    log(
        f"wrote {out_dir}/{{{JOBLIB_FILE},{ONNX_FILE},{CALIBRATION_FILE},{REFERENCE_FILE},"
        f"model_card.json}} "
        f"version {card['version']} "
        f"in {card['training_seconds']} s"
    )
    return card


def train_from_raw(raw_dir, out_dir, years=(synth.YEAR,), test_year=None, **kwargs) -> dict:
    """Train on real BAAC files of ``years`` in ``raw_dir``; the card records each file's sha256."""
    check_test_year(years, test_year)  # before reading years of files
    files, tables = {}, {}
    for year in years:
        for path in baac.raw_files(raw_dir, year).values():
            files[path.name] = sha256_file(path)
        tables[year] = baac.read_raw(raw_dir, year)
    source = {"kind": "baac", "years": list(years), "raw_dir": str(raw_dir), "files": files}
    return train(tables, out_dir, source, test_year=test_year, **kwargs)


def train_synthetic(
    out_dir, n_accidents: int = 20000, data_seed: int = 42, years=(synth.YEAR,), test_year=None,
    **kwargs,
) -> dict:
    """Generate synthetic BAAC files of ``years``, read them back through the reader, and train."""
    check_test_year(years, test_year)
    files, tables = {}, {}
    with tempfile.TemporaryDirectory(prefix="accident-synth-") as raw_dir:
        for year in years:
            paths = synth.write(raw_dir, n_accidents, data_seed, year)
            files.update({path.name: sha256_file(path) for path in paths.values()})
            tables[year] = baac.read_raw(raw_dir, year)
    source = {
        "kind": "synthetic",
        "years": list(years),
        "accidents": n_accidents,
        "seed": data_seed,
        "files": files,
    }
    return train(tables, out_dir, source, test_year=test_year, **kwargs)
