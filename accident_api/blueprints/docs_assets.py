"""Blueprint `docs_assets`: Swagger UI's own files, served locally so /docs works offline.

flask-smorest renders the /docs page; the JavaScript and CSS it references come from the
pinned flask-swagger-ui wheel (Swagger UI 5 dist) instead of a CDN, so the page needs no
internet and a strict same-origin Content-Security-Policy can cover it.
"""
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, send_from_directory

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
ASSETS_URL = "/docs/assets/"

blp = Blueprint("docs_assets", __name__)


@blp.route(ASSETS_URL + "<path:filename>")
def swagger_ui_asset(filename):
    """One Swagger UI file (404 for anything outside the dist folder)."""
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)
