"""Blueprint `meta`: landing page, model card, liveness and readiness."""
from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from accident_api.errors import document_errors
from accident_api.schemas import LiveSchema, ModelCardSchema, ModelQuerySchema, ReadySchema
from accident_api.service import served_model

blp = Blueprint("meta", __name__, description="Service metadata, model card and health")

LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>accident-api</title></head>
<body><h1>accident-api</h1>
<p>Predicts the severity of a French road accident (BAAC open data) with a RandomForest.</p>
<ul>
<li><a href="{docs}">Interactive API documentation (Swagger UI)</a></li>
<li><a href="{spec}">OpenAPI specification</a></li>
<li><a href="{card}">Model card</a> &middot; <a href="{ready}">readiness</a></li>
</ul></body></html>
"""


@blp.route("/", endpoint="index")
class Index(MethodView):
    @blp.response(200, content_type="text/html",
                  description="A short HTML page linking to the docs.")
    def get(self):
        """Landing page with links to the documentation."""
        html = LANDING.format(docs="/docs", spec="/openapi.json", card=url_for("meta.model"),
                              ready=url_for("meta.ready"))
        return Response(html, mimetype="text/html")


@blp.route("/model", endpoint="model")
class ModelCard(MethodView):
    @blp.arguments(ModelQuerySchema(), location="query")
    @blp.response(200, ModelCardSchema())
    @document_errors(blp, {
        422: "`include` is not `reference`.", 503: "No model loaded; the message says why."})
    def get(self, query):
        """The model card: identity, data source, features with valid ranges, metrics.

        The drift reference bins are left out unless `?include=reference`.
        """
        predictor = served_model().predictor
        card = dict(predictor.card, backend=predictor.backend)
        if query.get("include") != "reference":
            card.pop("reference", None)
        return card


@blp.route("/health/live", endpoint="live")
class Live(MethodView):
    @blp.response(200, LiveSchema())
    def get(self):
        """Liveness: the process is up and serving HTTP."""
        return {"status": "alive"}


@blp.route("/health/ready", endpoint="ready")
class Ready(MethodView):
    @blp.response(200, ReadySchema())
    @document_errors(blp, {503: "No model loaded; the message says why."})
    def get(self):
        """Readiness: 200 only when the model is loaded and verified, else 503 with the reason."""
        predictor = served_model().predictor  # 503 with the reason when there is none
        return {"status": "ready", "model": predictor.name, "model_version": predictor.version,
                "backend": predictor.backend}
