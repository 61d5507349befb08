"""Training rows from several BAAC years: features built per year, then concatenated.

Each year's four tables go through ``model.features.build_features`` on their own (an accident
and its users and vehicles are always in one year's files), so ``year_acc`` keeps its meaning:
the year of the accident. The rows are then stacked, each remembering the year of its files,
which is what a time-based evaluation splits on. ``split_rows`` cuts the fit years' rows into
the forest's training rows, the calibration rows and the test rows.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from model.features import build_features


@dataclass
class Dataset:
    """Feature rows of one or more years: ``frame`` (X), ``target`` (y), ``year`` per row."""

    frame: pd.DataFrame
    target: pd.Series
    year: np.ndarray
    reports: dict  # year -> build_features report

    def select(self, mask) -> "Dataset":
        """The rows where ``mask`` is true (reports kept)."""
        return Dataset(self.frame[mask], self.target[mask], self.year[mask], self.reports)

    def take(self, positions) -> "Dataset":
        """The rows at ``positions`` (0-based, in this order; reports kept)."""
        return Dataset(self.frame.iloc[positions], self.target.iloc[positions],
                       self.year[positions], self.reports)


class Split(NamedTuple):
    """Row positions of three disjoint parts: the forest's training rows, the rows its
    calibration map is fitted on, and the held-out test rows."""

    train: np.ndarray
    calibration: np.ndarray
    test: np.ndarray


def split_rows(target, test_size: float, calibration_size: float, seed: int) -> Split:
    """Stratified split of the rows of ``target`` into train, calibration and test positions.

    The test rows are drawn first (the same rows as a plain train/test split with this seed
    and ``test_size``); ``calibration_size`` is the share of the remaining rows held out for
    calibration.

    Parameters
    ----------
    target : array-like of int
        The labels of the rows to split.
    test_size, calibration_size : float
        Test share of all rows; calibration share of the non-test rows.
    seed : int
        Random state of both draws.

    Returns
    -------
    Split

    Raises
    ------
    ValueError
        A share outside (0, 1).
    """
    for name, share in (("test_size", test_size), ("calibration_size", calibration_size)):
        if not 0 < share < 1:
            raise ValueError(f"{name} {share} is not a share strictly between 0 and 1")
    target = np.asarray(target)
    rest, test = train_test_split(np.arange(len(target)), test_size=test_size, stratify=target,
                                  random_state=seed)
    train, calibration = train_test_split(rest, test_size=calibration_size,
                                          stratify=target[rest], random_state=seed)
    return Split(train, calibration, test)


def build_dataset(tables_by_year: dict) -> Dataset:
    """Build the features of each year's tables and stack them, oldest year first.

    Parameters
    ----------
    tables_by_year : dict
        year -> the four raw tables of that year (``model.baac.read_raw``).

    Returns
    -------
    Dataset
        Rows of every year; ``reports`` holds each year's row counts and drops.
    """
    frames, targets, years, reports = [], [], [], {}
    for year in sorted(tables_by_year):
        frame, target, reports[year] = build_features(tables_by_year[year])
        frames.append(frame)
        targets.append(target)
        years.append(np.full(len(frame), year))
    return Dataset(pd.concat(frames), pd.concat(targets), np.concatenate(years), reports)


def sum_reports(reports: dict) -> dict:
    """One report adding up the yearly ones (counts summed, per-feature counts summed)."""
    total = {}
    for report in reports.values():
        for key, value in report.items():
            if isinstance(value, dict):
                into = total.setdefault(key, {})
                for name, count in value.items():
                    into[name] = into.get(name, 0) + count
            else:
                total[key] = total.get(key, 0) + value
    return total


def check_test_year(years, test_year: int | None) -> None:
    """Raise ValueError unless ``test_year`` is among ``years`` and an earlier year is too."""
    if test_year is None:
        return
    if test_year not in years:
        raise ValueError(f"--test-year {test_year} is not among the years read ({list(years)})")
    if not any(year < test_year for year in years):
        raise ValueError(
            f"--test-year {test_year} leaves no earlier year to train on (years: {list(years)}): "
            f"add one, e.g. --years {test_year - 1}-{test_year}"
        )


def row_counts(data: Dataset, split: Split, test_year) -> dict:
    """The card's ``rows``: all years added up, the split sizes, and each year's own report."""
    by_year = {
        str(year): {**report, "role": "time test" if test_year and year >= test_year else "fit"}
        for year, report in data.reports.items()
    }
    later_rows = int((data.year >= test_year).sum()) if test_year else 0
    return {**sum_reports(data.reports), "train": len(split.train),
            "calibration": len(split.calibration), "test": len(split.test),
            "test_years": later_rows, "by_year": by_year}
