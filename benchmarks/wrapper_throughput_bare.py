"""The baseline of wrapper_throughput.py: a bare Flask app doing the adder's multiply, nothing else."""

from __future__ import annotations

from flask import Flask, jsonify, request


def create_app() -> Flask:
    """POST /api/v1/perform multiplies x and y, like the adder job behind the wrapper."""
    app = Flask(__name__)

    @app.post("/api/v1/perform")
    def perform():  # type: ignore[no-untyped-def]
        body = request.get_json()
        return jsonify(float(body["x"]) * float(body["y"]))

    return app
