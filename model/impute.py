"""Missing-value imputation learned on the training split only (no leakage from the test split).

One fill for training and serving: `Imputer.fill` replaces the NaN of numpy rows. Training's
`transform` calls it on its frames, and the served model calls it with the fill values of the
model card (`Imputer.from_card`), so an unknown sent to the API is imputed exactly as training
imputed a missing value. No pandas import: a server loads this module.
"""
import math

import numpy as np

from model.domain import DOMAIN, VALID
from model.errors import ModelCorruptError
from model.feature_specs import FEATURE_SPECS, FEATURES


class Imputer:
    """Fill missing values: median of numeric features (rounded for int ones), mode of categorical.

    ``fit`` must only ever see the training split; ``transform`` applies the learned values to
    any split. Learned attributes: ``fill_values_`` (feature -> value, the card's
    ``imputation``) and ``fill_row_`` (the same values as one row in FEATURES order).
    """

    def fit(self, frame) -> "Imputer":
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
        fill_values = {}
        for spec in FEATURE_SPECS:
            col = frame[spec.name].dropna()
            if col.empty:
                value = spec.example  # nothing observed: the documented example is in-domain
            elif spec.kind == "categorical":
                value = col.mode().min()
            else:
                value = col.median()
                value = round(value) if spec.dtype == "int" else value
            fill_values[spec.name] = float(value)
        return self._learned(fill_values)

    @classmethod
    def from_card(cls, card: dict) -> "Imputer":
        """The imputer a model was trained with, from its card's ``imputation``.

        Raises
        ------
        ModelCorruptError
            A feature has no fill value, or one outside its valid domain.
        """
        fill_values = card.get("imputation")
        if not isinstance(fill_values, dict):
            raise ModelCorruptError("the model card has no `imputation` fill values: retrain "
                                    "the model")
        row = []
        for name in FEATURES:
            value = fill_values.get(name)
            if type(value) not in (int, float) or not math.isfinite(value):
                raise ModelCorruptError(f"the model card's imputation has no fill value for "
                                        f"{name!r} (got {value!r}): retrain the model")
            row.append(float(value))
        kinds = DOMAIN.violations(np.array([row]))[0]
        if (kinds != VALID).any():
            name = FEATURES[int(np.flatnonzero(kinds != VALID)[0])]
            raise ModelCorruptError(f"the model card's fill value for {name!r} "
                                    f"({fill_values[name]!r}) is outside its valid domain: "
                                    "retrain the model")
        return cls()._learned(dict(zip(FEATURES, row)))

    def _learned(self, fill_values: dict) -> "Imputer":
        self.fill_values_ = fill_values
        self.fill_row_ = np.array([fill_values[name] for name in FEATURES], dtype="float64")
        return self

    def fill(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` (n, 28 float64, FEATURES order) with each NaN replaced by its feature's fill
        value, and the (n, 28) boolean mask of the values replaced; ``rows`` is not changed."""
        missing = np.isnan(rows)
        if not missing.any():
            return rows, missing
        return np.where(missing, self.fill_row_, rows), missing

    def transform(self, frame):
        """Return a copy of ``frame`` (columns FEATURES) with NaN replaced by the fill values."""
        columns = list(FEATURES)
        filled = frame.copy()
        filled[columns] = self.fill(frame[columns].to_numpy("float64"))[0]
        return filled
