"""The API's blueprints: predictions, feedback, meta (card, health, landing page), v2, docs
assets."""

# Endpoints that predict: API keys guard them, and a response >= 400 from one of them is a
# failed prediction request (api_predict_total{outcome="error"}).
PREDICTION_ENDPOINTS = frozenset({
    "predictions.predict", "predictions.predict_batch", "v2.model_infer",
    "v2.model_version_infer",
})
# Endpoints that change what the service records: API keys guard them (when configured).
PROTECTED_ENDPOINTS = PREDICTION_ENDPOINTS | {"feedback.feedback"}
