"""Swagger UI's files, from the swagger-ui-bundle package: /docs works with no internet."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

URL = "/docs/assets/"

blp = Blueprint("swagger_assets", __name__)


@blp.route(f"{URL}<path:filename>")
def asset(filename: str) -> Response:
    """Serve one of Swagger UI's files (send_from_directory refuses paths outside it)."""
    return send_from_directory(swagger_ui_path, filename, max_age=86_400)
