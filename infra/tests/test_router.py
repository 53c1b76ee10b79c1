"""The local router (`cargo lambda watch`) must serve exactly the routes template.yaml deploys.

Cargo.toml's `[workspace.metadata.lambda.watch.router]` maps "/api" + each HttpApi route path
(same `{param}` syntax) to the function binary named in the function's Metadata.Binary:

    "/api/ivr/auth/login" = [{ method = "POST", function = "auth-login" }]

A plain string value means "any method" and must then be the one function serving every
method the template has on that path. No router entry may exist that the template lacks.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from helpers import CARGO_TOML, TEMPLATE, local_stack

LOCAL_PREFIX = "/api"
ANY = "*"



def load_router(cargo_toml: Path = CARGO_TOML) -> dict[str, dict[str, str]]:
    """Router as {path: {METHOD or "*": function}} from either form cargo-lambda accepts."""
    with open(cargo_toml, "rb") as fh:
        manifest = tomllib.load(fh)
    raw = (
        manifest.get("workspace", {})
        .get("metadata", {})
        .get("lambda", {})
        .get("watch", {})
        .get("router")
    )
    if raw is None:
        pytest.fail(f"{cargo_toml} has no [workspace.metadata.lambda.watch.router] table")

    router: dict[str, dict[str, str]] = {}

    def add(path: str, method: str, function: str) -> None:
        methods = router.setdefault(path, {})
        if method in methods and methods[method] != function:
            pytest.fail(f"router maps {method} {path} to both {methods[method]} and {function}")
        methods[method] = function

    if isinstance(raw, dict):  # "/path" = "fn"  |  "/path" = [{method, function}, ...]
        for path, value in raw.items():
            if isinstance(value, str):
                add(path, ANY, value)
            elif isinstance(value, list):
                router.setdefault(path, {})
                for item in value:
                    assert isinstance(item, dict) and {"method", "function"} <= set(item), (
                        f"router entry {path}: items need method and function, got {item!r}"
                    )
                    add(path, str(item["method"]).upper(), item["function"])
            else:
                pytest.fail(f"router entry {path}: unexpected value {value!r}")
    elif isinstance(raw, list):  # [[...router]] path = "..", methods = [..], function = ".."
        for item in raw:
            methods = item.get("methods") or [ANY]
            for method in methods:
                add(item["path"], str(method).upper(), item["function"])
    else:
        pytest.fail(f"unexpected router value {raw!r}")
    return router


def expected_router(template_path: Path = TEMPLATE) -> dict[str, dict[str, str]]:
    template = local_stack.load_template(template_path)
    expected: dict[str, dict[str, str]] = {}
    for (method, path), binary in local_stack.function_routes(template).items():
        expected.setdefault(LOCAL_PREFIX + path, {})[method] = binary
    return expected


def router_problems(
    expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]
) -> list[str]:
    problems: list[str] = []
    for path, methods in sorted(expected.items()):
        have = actual.get(path)
        if have is None:
            problems.append(f"missing router entry {path!r} ({methods})")
            continue
        for method, binary in sorted(methods.items()):
            got = have.get(method, have.get(ANY))
            if got != binary:
                problems.append(f"{method} {path}: router has {got!r}, template has {binary!r}")
        for method, function in sorted(have.items()):
            if method != ANY and method not in methods:
                problems.append(f"{method} {path} -> {function}: not a route in template.yaml")
    for path in sorted(set(actual) - set(expected)):
        problems.append(f"router entry {path!r} -> {actual[path]} is not in template.yaml")
    return problems


def test_template_declares_http_routes():
    template = local_stack.load_template(TEMPLATE)
    routes = local_stack.http_routes(template)
    assert routes, "template.yaml declares no HttpApi routes"
    for method, path in routes:
        assert path.startswith("/ivr/"), f"{method} {path}: routes live under /ivr/"
        assert method in {"GET", "POST", "PUT", "PATCH", "DELETE"}, f"{method} {path}"


def test_function_binaries_are_unique():
    binaries = local_stack.function_binaries(local_stack.load_template(TEMPLATE))
    seen: dict[str, str] = {}
    for lid, binary in binaries.items():
        assert binary not in seen, f"{lid} and {seen[binary]} both build binary {binary}"
        seen[binary] = lid


def test_router_matches_template():
    problems = router_problems(expected_router(), load_router())
    assert not problems, "Cargo.toml watch router and template.yaml disagree:\n  " + "\n  ".join(
        problems
    )


def test_router_problem_detection():
    """The comparison itself catches missing, wrong, extra and any-method entries."""
    expected = {"/api/a": {"GET": "f", "POST": "g"}, "/api/b": {"GET": "h"}}
    assert (
        router_problems(expected, {"/api/a": {"GET": "f", "POST": "g"}, "/api/b": {"*": "h"}}) == []
    )
    assert (
        router_problems(expected, {"/api/a": {"GET": "f", "POST": "g"}, "/api/b": {"GET": "h"}})
        == []
    )
    assert router_problems(expected, {"/api/a": {"*": "f"}, "/api/b": {"GET": "h"}})  # POST wrong
    assert router_problems(
        expected, {"/api/a": {"GET": "f"}, "/api/b": {"GET": "h"}}
    )  # POST missing
    assert router_problems(
        expected, {"/api/a": {"GET": "f", "POST": "g", "PUT": "g"}, "/api/b": {"GET": "h"}}
    )
    assert router_problems(
        expected,
        {**{"/api/a": {"GET": "f", "POST": "g"}, "/api/b": {"GET": "h"}}, "/api/c": {"*": "x"}},
    )
    assert router_problems(expected, {"/api/a": {"GET": "f", "POST": "g"}})  # /api/b missing
