"""The API's OpenAPI 3 document, written by hand (served at ``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

API_VERSION = "1"


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of this server (``version``: the edge-infer package version)."""
    json_doc = {"application/json": {"schema": {"type": "object"}}}
    text_plain = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "edge-infer", "version": version,
                 "description": "Movie-review sentiment with ONNX Runtime. API version 1 (paths under /v1)."},
        "paths": {
            "/v1/predict": {"post": {
                "summary": "Classify one or more texts (same labels and scores as SentimentClassifier.predict).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
                "responses": {
                    "200": {"description": "One prediction per text, in request order.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}}},
                    "400": _error("invalid_json: the body is not JSON (or not UTF-8)."),
                    "408": _error("body_timeout: the body did not arrive within the server's --body-timeout."),
                    "413": _error("body_too_large, too_many_texts or text_too_long."),
                    "415": _error("unsupported_media_type: Content-Type is not application/json (UTF-8)."),
                    "421": _error("host_not_allowed: the Host header is not in --allowed-hosts (every route)."),
                    "422": _error("invalid_request, empty_text or invalid_threshold."),
                    "503": _error("queue_full (with Retry-After) or shutting_down."),
                    "504": _error("timeout: no answer within the server's --timeout."),
                }}},
            "/v1/explain": {"post": {
                "summary": "Each word's contribution to a label's probability, by occlusion (the same JSON as "
                           "SentimentClassifier.explain(...).to_dict()).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ExplainRequest"}}}},
                "responses": {
                    "200": {"description": "The prediction and one entry per word.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Explanation"}}}},
                    "400": _error("invalid_json: the body is not JSON (or not UTF-8)."),
                    "408": _error("body_timeout: the body did not arrive within the server's --body-timeout."),
                    "413": _error("body_too_large, text_too_long (--max-text-chars) or too_many_tokens "
                                  "(--explain-max-tokens)."),
                    "415": _error("unsupported_media_type: Content-Type is not application/json (UTF-8)."),
                    "421": _error("host_not_allowed: the Host header is not in --allowed-hosts (every route)."),
                    "422": _error("invalid_request, empty_text, invalid_label or invalid_window."),
                    "503": _error("explain_busy (--explain-concurrency explanations running; with Retry-After) "
                                  "or shutting_down."),
                    "504": _error("timeout: no answer within the server's --timeout."),
                }}},
            "/v1/info": {"get": {"summary": "The model's manifest, as `edge-infer info --format json` prints it, "
                                            "and the explanation limits (explain).",
                                 "responses": {"200": {"description": "Manifest plus path, verified and explain.",
                                                       "content": json_doc}}}},
            "/healthz": {"get": {"summary": "Liveness.", "responses": {"200": {"description": "Alive.",
                                                                               "content": json_doc}}}},
            "/readyz": {"get": {"summary": "Readiness: the model is loaded and verified, not shutting down.",
                                "responses": {"200": {"description": "Ready.", "content": json_doc},
                                              "503": _error("shutting_down.")}}},
            "/metrics": {"get": {"summary": "Prometheus text exposition format 0.0.4.",
                                 "responses": {"200": {"description": "Metrics.", "content": text_plain}}}},
            "/openapi.json": {"get": {"summary": "This document.",
                                      "responses": {"200": {"description": "OpenAPI 3.", "content": json_doc}}}},
        },
        "components": {"schemas": {
            "PredictRequest": {
                "type": "object", "additionalProperties": False,
                "description": "Exactly one of text, texts or items. Texts must not be empty or whitespace-only.",
                "properties": {
                    "text": {"type": "string"},
                    "texts": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "items": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["id", "text"], "additionalProperties": False,
                        "properties": {"id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                                       "text": {"type": "string"}}}},
                    "threshold": {"type": "number", "minimum": 0, "maximum": 1,
                                  "description": "Overrides the model's threshold (two-label models only)."},
                }},
            "Prediction": {
                "type": "object", "required": ["label", "score", "scores"],
                "properties": {
                    "id": {"oneOf": [{"type": "string"}, {"type": "integer"}],
                           "description": "The item's id (items form only)."},
                    "label": {"type": "string"},
                    "score": {"type": "number", "description": "Two labels: P(labels[1]); more: the winner's."},
                    "scores": {"type": "object", "additionalProperties": {"type": "number"},
                               "description": "Every label's probability, in the model's label order."},
                }},
            "PredictResponse": {
                "type": "object", "required": ["model", "predictions"],
                "properties": {"model": {"type": "string"},
                               "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}},
            "ExplainRequest": {
                "type": "object", "additionalProperties": False, "required": ["text"],
                "properties": {
                    "text": {"type": "string", "description": "Not empty or whitespace-only."},
                    "label": {"type": "string", "description": "The label explained (default: the predicted one)."},
                    "window": {"type": "integer", "minimum": 1, "maximum": 3, "default": 1,
                               "description": "Consecutive words left out at a time."},
                }},
            "Explanation": {
                "type": "object",
                "required": ["label", "score", "scores", "explained_label", "probability", "method", "window",
                             "offsets", "words"],
                "properties": {
                    "label": {"type": "string"}, "score": {"type": "number"},
                    "scores": {"type": "object", "additionalProperties": {"type": "number"}},
                    "explained_label": {"type": "string"}, "probability": {"type": "number"},
                    "method": {"type": "string"}, "window": {"type": "integer"},
                    "offsets": {"type": "string", "description": "The unit of start/end: code points."},
                    "words": {"type": "array", "items": {
                        "type": "object", "required": ["start", "end", "text", "token", "contribution", "seen"],
                        "properties": {"start": {"type": "integer"}, "end": {"type": "integer"},
                                       "text": {"type": "string"}, "token": {"type": "string"},
                                       "contribution": {"type": "number"}, "seen": {"type": "boolean"}}}},
                }},
            "Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}},
        }},
    }
