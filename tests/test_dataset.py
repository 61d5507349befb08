"""model.dataset and model.evaluation: years stacked with their meaning kept, sums, checks."""

import numpy as np
import pytest

from model import synth
from model.dataset import build_dataset, check_test_year, sum_reports
from model.evaluation import evaluate
from model.features import build_features


@pytest.fixture(scope="module")
def tables():
    return {year: synth.generate(120, seed=2, year=year) for year in (2022, 2019)}


def test_years_are_built_one_by_one_then_stacked(tables):
    data = build_dataset(tables)
    assert list(data.reports) == [2019, 2022]  # oldest first, whatever the order given
    assert (data.frame["year_acc"].to_numpy() == data.year).all()
    assert (data.year == 2019).sum() == data.reports[2019]["rows_out"] == 120
    alone, target, _ = build_features(tables[2022])
    stacked = data.select(data.year == 2022)
    assert stacked.frame.equals(alone) and stacked.target.equals(target)


def test_reports_add_up(tables):
    data = build_dataset(tables)
    total = sum_reports(data.reports)
    assert total["accidents_in"] == 240
    assert total["users_in"] == sum(r["users_in"] for r in data.reports.values())
    assert total["missing"]["vma"] == sum(r["missing"]["vma"] for r in data.reports.values())


@pytest.mark.parametrize(
    "years,test_year,message",
    [
        ((2019, 2020), 2019, "leaves no earlier year to train on"),
        ((2019, 2020), 2021, "is not among the years read"),
    ],
)
def test_check_test_year(years, test_year, message):
    with pytest.raises(ValueError, match=message):
        check_test_year(years, test_year)
    check_test_year(years, None)
    check_test_year(years, 2020)


def test_one_class_has_no_roc_auc():
    result = evaluate(np.array([1, 1, 1]), np.array([0.9, 0.2, 0.7]))
    assert result["roc_auc"] is None and result["recall"] == pytest.approx(2 / 3)
    assert result["baseline"]["accuracy"] == 1.0
