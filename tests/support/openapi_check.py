"""Validates real responses against the OpenAPI document (api/openapi.py) with openapi-core.

Every response the test-suite gets from a TestClient (support.runner.Runner.client) or from a
host_runner.client.api_client.Client built by the tests (with :func:`validate` as its response hook) goes
through :func:`check_response`; a response that the document does not describe (an undocumented path, status,
header or field) fails the test that caused it.
Only requests to paths the API does not have (404/405 from the router) are checked against the Error schema
alone, since no document can list them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
import requests
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import MissingData

from api.openapi import openapi_document

__all__ = ["UndocumentedResponse", "check_response", "validate"]

DOCUMENT = openapi_document()
SPEC = OpenAPI.from_dict(DOCUMENT)  # also validates the document itself as OpenAPI 3.1
ERROR_SCHEMA = {**DOCUMENT["components"]["schemas"]["Error"]}


class UndocumentedResponse(AssertionError):
    """A response the document does not describe (an AssertionError, so pytest reports it as a failed check)."""


def check_response(method: str, path: str, query: Mapping[str, Any] | None, status: int,
                   headers: Mapping[str, str], body: bytes, *, streamed: bool = False) -> None:
    """Raise :class:`UndocumentedResponse` unless the document describes this response.

    ``streamed``: the body was not read (a followed log): status and headers are checked, not the bytes.
    """
    content_type = headers.get("content-type") or headers.get("Content-Type") or ""
    if "?" in path:
        path, _, query_string = path.partition("?")
        query = {**dict(parse_qsl(query_string)), **(query or {})}
    request = MockRequest("http://127.0.0.1", method, path, args=dict(query or {}))
    if streamed or (not body and content_type.startswith("application/octet-stream")):
        body = b"\x00"  # raw bytes have no schema: any body, the empty one included, is valid
    response = MockResponse(body, status, dict(headers), content_type)
    try:
        SPEC.validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        if status not in (401, 403, 404, 405, 415):  # answered before routing, whatever the path or method
            raise UndocumentedResponse(
                f"{method.upper()} {path} answered {status} but is not in the document") from None
        _check_error_body(method, path, status, body)
        return
    except MissingData as exc:
        raise UndocumentedResponse(f"{method.upper()} {path} answered {status} without a body: {exc}") from None
    except Exception as exc:
        raise UndocumentedResponse(
            f"{method.upper()} {path} answered {status} ({content_type}) against the document: {exc}\n"
            f"body: {body[:500]!r}"
        ) from None


def validate(response: requests.Response, streamed: bool) -> None:
    """requests' response hook for host_runner.client.api_client.Client: every answer must match the OpenAPI
    document."""
    request = response.request
    check_response(request.method or "GET", request.path_url, None, response.status_code, response.headers,
                   b"" if streamed else response.content, streamed=streamed)


def _check_error_body(method: str, path: str, status: int, body: bytes) -> None:
    try:
        jsonschema.validate(json.loads(body), ERROR_SCHEMA)
    except (ValueError, jsonschema.ValidationError) as exc:
        raise UndocumentedResponse(f"{method.upper()} {path} answered {status} with a non-Error body: {exc}") from None
