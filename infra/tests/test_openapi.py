"""infra/openapi.yaml must describe exactly the routes that are deployed and served locally,
and be a valid OpenAPI 3.1 document.

Routes come from template.yaml's HttpApi events (via infra/local_stack.py) and from Cargo.toml's
`[workspace.metadata.lambda.watch.router]` (the `cargo lambda watch` routes, under "/api").
No local stack needed: this runs anywhere.
"""
from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from helpers import CARGO_TOML, OPENAPI, TEMPLATE, local_stack
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

SPEC = OPENAPI
LOCAL_PREFIX = "/api"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
SERVERS = {"https://api.pulsara.ai/v1", "http://localhost:5000/api"}
SCHEMES = {
    "ivrApiKey",
    "adminToken",
    "elevenlabsSignature",
    "twilioSignature",
    "vapiCredential",
    "retellSignature",
}
BEARER_SCHEMES = {"ivrApiKey", "adminToken"}
# The routes voice platforms call: their 2xx body is the platform's own format (ElevenLabs'
# JSON, TwiML), not our envelope, and their request bodies are the platforms' (fields they add
# are accepted); their errors are our error envelope like everyone else's.
PLATFORM_PATHS = {
    "/ivr/integrations/{integrationId}/elevenlabs/conversation-init": "application/json",
    "/ivr/integrations/{integrationId}/elevenlabs/post-call": "application/json",
    "/ivr/integrations/{integrationId}/twilio/voice": "text/xml",
    "/ivr/integrations/{integrationId}/twilio/status": "text/xml",
    "/ivr/integrations/{integrationId}/vapi": "application/json",
    "/ivr/integrations/{integrationId}/retell/inbound": "application/json",
    "/ivr/integrations/{integrationId}/retell/events": "application/json",
}
ANY = "ANY"


@pytest.fixture(scope="module")
def spec() -> dict:
    with open(SPEC, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def spec_routes(spec: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in (spec.get("paths") or {}).items()
        for method in item
        if method in HTTP_METHODS
    }


def operations(spec: dict):
    for path, item in (spec.get("paths") or {}).items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, op


def template_routes() -> set[tuple[str, str]]:
    return local_stack.http_routes(local_stack.load_template(TEMPLATE))


def router_routes() -> set[tuple[str, str]]:
    """(METHOD, path) served by `cargo lambda watch`, "/api" stripped; METHOD "ANY" for a
    path mapped to a function for every method."""
    with open(CARGO_TOML, "rb") as fh:
        manifest = tomllib.load(fh)
    raw = (
        manifest.get("workspace", {})
        .get("metadata", {})
        .get("lambda", {})
        .get("watch", {})
        .get("router")
    )
    assert raw is not None, f"{CARGO_TOML} has no [workspace.metadata.lambda.watch.router]"
    pairs: list[tuple[str, str]] = []
    if isinstance(raw, dict):  # "/path" = "fn"  |  "/path" = [{method, function}, ...]
        for path, value in raw.items():
            if isinstance(value, str):
                pairs.append((ANY, path))
            else:
                pairs.extend((str(item["method"]).upper(), path) for item in value)
    else:  # [[...router]] path = "..", methods = [..], function = ".."
        for item in raw:
            pairs.extend((str(m).upper(), item["path"]) for m in item.get("methods") or [ANY])
    routes = set()
    for method, path in pairs:
        assert path.startswith(LOCAL_PREFIX + "/"), (
            f"router path {path} is not under {LOCAL_PREFIX}"
        )
        routes.add((method, path[len(LOCAL_PREFIX):]))
    return routes


def _diff(expected: set, actual: set, what: str) -> list[str]:
    problems = [
        f"{m} {p} is {what} but missing from {SPEC.name}" for m, p in sorted(expected - actual)
    ]
    problems += [f"{m} {p} is in {SPEC.name} but not {what}" for m, p in sorted(actual - expected)]
    return problems


# --- the routes --------------------------------------------------------------------------------


def test_spec_documents_exactly_the_template_routes(spec):
    routes = template_routes()
    assert routes, "template.yaml declares no HttpApi routes"
    problems = _diff(routes, spec_routes(spec), "routed in template.yaml")
    assert not problems, "\n".join(problems)


def test_spec_documents_exactly_the_local_router_routes(spec):
    documented = spec_routes(spec)
    router = router_routes()
    # A path the router maps for any method stands for every method the spec has on it.
    any_paths = {p for m, p in router if m == ANY}
    expanded = {(m, p) for m, p in router if m != ANY} | {
        (m, p) for m, p in documented if p in any_paths
    }
    problems = _diff(expanded, documented, "in Cargo.toml's watch router")
    problems += [f"router path /api{p} (any method) has no operation in {SPEC.name}"
                 for p in sorted(any_paths - {p for _, p in documented})]
    assert not problems, "\n".join(problems)


# --- the document itself -----------------------------------------------------------------------


def test_spec_is_a_valid_openapi_3_1_document(spec):
    assert str(spec.get("openapi", "")).startswith("3.1."), "must be OpenAPI 3.1"
    spec_dict, base_uri = read_from_filename(str(SPEC))
    validate(spec_dict, base_uri=base_uri)  # raises OpenAPIValidationError with the reason


def test_servers(spec):
    assert {s["url"] for s in spec.get("servers", [])} == SERVERS


def test_every_operation_names_its_credential(spec):
    schemes = spec["components"]["securitySchemes"]
    assert set(schemes) == SCHEMES
    assert all(schemes[s]["type"] == "http" and schemes[s]["scheme"] == "bearer"
               for s in BEARER_SCHEMES)
    # The platforms sign with a header of their own, verified per integration.
    assert schemes["elevenlabsSignature"] == {**schemes["elevenlabsSignature"], "type": "apiKey",
                                              "in": "header", "name": "ElevenLabs-Signature"}
    assert schemes["twilioSignature"] == {**schemes["twilioSignature"], "type": "apiKey",
                                          "in": "header", "name": "X-Twilio-Signature"}
    for method, path, op in operations(spec):
        security = op.get("security")
        assert security is not None, f"{method} {path} has no explicit `security`"
        if (method, path) == ("POST", "/ivr/auth/login"):
            assert security == [], "login needs no credential"
            continue
        named = [name for requirement in security for name in requirement]
        assert len(named) == 1 and named[0] in SCHEMES, f"{method} {path}: security {security}"


def test_operations_have_unique_ids(spec):
    ids = [op.get("operationId") for _, _, op in operations(spec)]
    assert all(ids), "every operation needs an operationId"
    assert len(ids) == len(set(ids)), ids


def _resolve(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def test_every_response_is_enveloped_json_with_a_request_id(spec):
    """Every declared response carries x-request-id and the JSON envelope; a 304 has no body."""
    for method, path, op in operations(spec):
        responses = op.get("responses") or {}
        assert any(code.startswith("2") for code in responses), (
            f"{method} {path} has no success response"
        )
        assert "500" in responses, f"{method} {path} does not declare 500"
        for code, response in responses.items():
            response = _resolve(spec, response)
            where = f"{method} {path} {code}"
            assert "x-request-id" in (response.get("headers") or {}), (
                f"{where}: no x-request-id header"
            )
            if code == "304":
                assert "content" not in response, f"{where}: a 304 has no body"
                continue
            if code.startswith("2") and path in PLATFORM_PATHS:
                assert list(response["content"]) == [PLATFORM_PATHS[path]], where
                continue
            schema = _resolve(spec, response["content"]["application/json"]["schema"])
            if code.startswith("2"):
                assert schema["properties"]["success"] == {"const": True}, where
                assert "data" in schema["required"], where
            else:
                refs = [part.get("$ref") for part in schema.get("allOf", [])]
                assert "#/components/schemas/ErrorResponse" in refs, (
                    f"{where}: not the error envelope"
                )
        if op.get("security"):
            assert {"401", "403"} <= set(responses), f"{method} {path} must declare 401 and 403"
        scheme = next(iter(op["security"][0]), None) if op.get("security") else None
        if scheme == "ivrApiKey":
            assert "429" in responses, f"{method} {path}: IVR routes are rate limited"
            for code, response in responses.items():
                if code.startswith("2"):
                    headers = {h.lower() for h in _resolve(spec, response).get("headers") or {}}
                    assert {
                        "ratelimit-limit",
                        "ratelimit-remaining",
                        "ratelimit-reset",
                    } <= headers, f"{method} {path} {code}: RateLimit-* headers"
        body = op.get("requestBody")
        if body and path in PLATFORM_PATHS:
            assert "422" in responses, f"{method} {path}: a payload it cannot use is 422"
        elif body:
            assert {"413", "415", "422"} <= set(responses), (
                f"{method} {path} takes JSON: 413/415/422"
            )
    limited = _resolve(spec, {"$ref": "#/components/responses/RateLimited"})
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        limited["headers"]
    )


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def test_request_bodies_are_strict(spec):
    """Every request object schema rejects unknown fields, as the server does."""
    for method, path, op in operations(spec):
        body = op.get("requestBody")
        if not body or path in PLATFORM_PATHS:
            continue  # a platform's body: fields it adds must not be refused
        schema = _resolve(spec, body["content"]["application/json"]["schema"])
        seen = set()
        stack = [schema]
        while stack:
            node = _resolve(spec, stack.pop())
            if id(node) in seen or not isinstance(node, dict):
                continue
            seen.add(id(node))
            if node.get("type") == "object" or (
                isinstance(node.get("type"), list) and "object" in node["type"]
            ):
                assert node.get("additionalProperties") is False, (
                    f"{method} {path}: object without additionalProperties: false"
                )
            for key in ("properties",):
                stack.extend((node.get(key) or {}).values())
            for key in ("items",):
                if isinstance(node.get(key), dict):
                    stack.append(node[key])
            for key in ("oneOf", "anyOf", "allOf"):
                stack.extend(node.get(key) or [])


def test_patterns_are_portable_regexes(spec):
    """Patterns must compile as Python regexes (what schemathesis generates from) and avoid
    syntax that ECMA-262 (what JSON Schema specifies) reads differently."""
    for where, node in _walk(spec):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and "/properties/pattern" not in where:
            re.compile(pattern)
            assert "(?" not in pattern and "\\A" not in pattern and "\\Z" not in pattern, (
                f"{where}: {pattern}"
            )
