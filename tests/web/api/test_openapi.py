"""The OpenAPI document: valid OpenAPI 3.1, served as made, and the check the tests rely on
does fail on a response the document does not allow."""

from __future__ import annotations

import json

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from aftercare.content.model import Project
from aftercare.web.api.openapi import document
from tests.web.api.conftest import Contract, call


def test_the_document_is_valid_openapi_3_1_and_served_without_a_key(
    client: FlaskClient, project: Project
) -> None:
    made = json.loads(json.dumps(document(project)))
    validate(made)
    response = call(client, "GET", "/openapi.json", None)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json == made
    assert made["openapi"] == "3.1.0"
    operations = {(method, path) for path, item in made["paths"].items()
                  for method in item if method != "parameters"}
    assert operations == {
        ("get", "/openapi.json"), ("post", "/enrolments"), ("get", "/enrolments/{public_id}"),
        ("post", "/enrolments/{public_id}/cancel"), ("post", "/enrolments/{public_id}/reschedule"),
        ("post", "/patients/{external_id}/rebooked"), ("post", "/unsubscribe")}


def test_the_validator_refuses_a_broken_document(project: Project) -> None:
    broken = json.loads(json.dumps(document(project)))
    broken["paths"]["/enrolments"]["post"]["responses"]["201"].pop("description")
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_the_check_catches_a_response_the_document_does_not_allow(
    project: Project, contract: Contract, app: Flask, key: str
) -> None:
    # A response with a member the document does not list: what the check exists to catch.
    with app.test_request_context("/api/v1/openapi.json"):
        contract.check(Response("[]", mimetype="application/json"))
    with app.test_request_context("/api/v1/enrolments/" + "0" * 32,
                                  headers={"Authorization": f"Bearer {key}"}):
        contract.check(Response(json.dumps({"id": "0" * 32, "surprise": 1}),
                                mimetype="application/json"))
    with app.test_request_context("/api/v1/enrolments", method="POST",
                                  json={"campaign": "botox-cosmetic"},
                                  headers={"Authorization": f"Bearer {key}"}):
        contract.check(Response("{}", status=201, mimetype="application/json"))
    caught, contract.failures[:] = list(contract.failures), []
    assert caught[0].startswith("GET /api/v1/openapi.json -> 200: response: ")
    assert caught[1].startswith(f"GET /api/v1/enrolments/{'0' * 32} -> 200: response: ")
    assert any("the document refuses this request" in text for text in caught[2:])
