"""The offline model report (`accident-api report`): a prediction-log window against the
model's reference dataset, with Evidently (the optional `report` extra)."""
