"""Missing-value imputation learned on the training split only (no leakage from the test split)."""

import pandas as pd

from model.features import FEATURE_SPECS


class Imputer:
    """Fill missing values: median of numeric features (rounded for int ones), mode of categorical.

    ``fit`` must only ever see the training split; ``transform`` applies the learned values to
    any split. Learned attribute: ``fill_values_`` (feature -> value).
    """

    def fit(self, frame: pd.DataFrame) -> "Imputer":
        """Learn one fill value per feature from ``frame`` (the training split).

        Parameters
        ----------
        frame : DataFrame
            Training rows, columns FEATURES, NaN where missing.

        Returns
        -------
        Imputer
            self, fitted.
        """
        self.fill_values_ = {}
        for spec in FEATURE_SPECS:
            col = frame[spec.name].dropna()
            if col.empty:
                value = spec.example  # nothing observed: the documented example is in-domain
            elif spec.kind == "categorical":
                value = col.mode().min()
            else:
                value = col.median()
                value = round(value) if spec.dtype == "int" else value
            self.fill_values_[spec.name] = float(value)
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return a copy of ``frame`` with NaN replaced by the learned fill values."""
        return frame.fillna(self.fill_values_)
