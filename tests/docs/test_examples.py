"""Every request of the docs, run as written (bash, curl) against a served run: the status its response block
states, a body of the same shape (the same keys, all the way down; values differ from run to run), and, on the
HTTP API page, the roles its section names: each of them is let in, every other role gets 403."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.docs.docs_pages import Example, docs_key, examples, reference

pytestmark = pytest.mark.slow

# the docs show the quick start's run; the test's warehouse (tests/api) holds other people: its match id instead
FIXTURE_MATCH_ID = "17"
_MATCH_PATHS = re.compile(r"(/customer360/|/customers/)(\d+)(?=[/?\"'\s])")
# curl as the docs call it, with the status appended on a line of its own (last: it wins over an example's own -w)
_CURL = "curl() { command curl \"$@\" -w '\\n%{http_code}'; }\n"


def run(example: Example, base: str, command: str | None = None) -> tuple[int, str]:
    """(status, body) of the example's request."""
    command = _MATCH_PATHS.sub(lambda m: m.group(1) + FIXTURE_MATCH_ID, command or example.command)
    proc = subprocess.run(["bash", "-c", "set -eo pipefail\n" + _CURL + command], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "C360": base})
    assert proc.returncode == 0, f"{example}: exit {proc.returncode}\n{proc.stderr}"
    body, _, status = proc.stdout.rpartition("\n")
    return int(status), body


def response_schema(example: Example, status: int, doc: dict, routes: dict) -> dict:
    """The OpenAPI schema of the example's answer with `status` ({} when the document has none)."""
    url = re.search(r"\$C360(/[^\"'?\s]*)", example.command).group(1)
    method = "POST" if re.search(r"(^|\s)(-d|--data|-X POST)\b", example.command) else "GET"
    path = next((p for (m, p), r in routes.items() if m == method and r.path_regex.match(url)), None)
    op = doc["paths"].get(path, {}).get(method.lower(), {})
    content = op.get("responses", {}).get(str(status), {}).get("content", {})
    return content.get("application/json", {}).get("schema", {})


def shape_differences(documented, actual, schema: dict, components: dict, where: str = "") -> list[str]:
    """Where two JSON values differ in shape, by the OpenAPI schema of the answer: an object's keys (a required one
    missing on either side, or one the schema does not declare; a map's keys are data), recursively, and the first
    items of lists that both have. A null on either side matches anything (a value the run may not have)."""
    if documented is None or actual is None:
        return []
    schema = _pick(schema, actual, components)
    if isinstance(documented, dict) and isinstance(actual, dict):
        props = schema.get("properties")
        if props is None and schema.get("additionalProperties"):  # a map: its keys are the data's
            return []
        out = []
        if props is None:
            if set(documented) != set(actual):
                out.append(f"{where}: keys documented only {sorted(set(documented) - set(actual))}, answered only "
                           f"{sorted(set(actual) - set(documented))}")
        else:
            required = set(schema.get("required", ()))
            for side, keys, other in (("documented", documented, actual), ("answered", actual, documented)):
                unknown = sorted(set(keys) - set(props))
                missing = sorted((required & set(keys)) - set(other))
                if unknown:
                    out.append(f"{where}: {side} keys the schema does not declare: {unknown}")
                if missing:
                    out.append(f"{where}: required keys only {side}: {missing}")
        for key in set(documented) & set(actual):
            out += shape_differences(documented[key], actual[key], (props or {}).get(key, {}), components,
                                     f"{where}.{key}")
        return out
    if isinstance(documented, list) and isinstance(actual, list):
        return (shape_differences(documented[0], actual[0], schema.get("items", {}), components, f"{where}[0]")
                if documented and actual else [])
    if isinstance(documented, (dict, list)) != isinstance(actual, (dict, list)):
        return [f"{where}: documented {type(documented).__name__}, answered {type(actual).__name__}"]
    return []


def _pick(schema: dict, value, components: dict) -> dict:
    """The schema itself, its $ref resolved, or of its anyOf / oneOf options the one for `value`'s JSON type."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    options = schema.get("anyOf") or schema.get("oneOf")
    if not options:
        return schema
    kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
    for option in options:
        resolved = _pick(option, value, components)
        if resolved.get("type") == kind or (kind == "object" and "properties" in resolved):
            return resolved
    return {}


def test_examples_run_as_written(served_docs):
    base, keys = served_docs
    found = examples()
    assert len(found) >= 10, f"only {len(found)} request examples found in docs/"
    app = reference.openapi_app()
    doc, routes = app.openapi(), reference.app_routes(app)
    components = doc.get("components", {}).get("schemas", {})
    failures = []
    for example in found:
        try:
            status, body = run(example, base)
        except AssertionError as exc:
            failures.append(str(exc))
            continue
        if example.status is None:
            failures.append(f"{example}: no response block with title=\"<status> ...\" after it")
            continue
        if status != example.status:
            failures.append(f"{example}: answered {status}, documented {example.status}: {body[:300]}")
            continue
        if example.lang == "json":
            try:
                documented, answered = json.loads(example.response), json.loads(body)
            except ValueError as exc:
                failures.append(f"{example}: not JSON ({exc}): documented {example.response[:100]!r}, "
                                f"answered {body[:100]!r}")
                continue
            schema = response_schema(example, status, doc, routes)
            failures += [f"{example}: {d}" for d in shape_differences(documented, answered, schema, components)]
        if example.roles:  # each other role's key in place of the documented one: 403 exactly when not named
            used = next((role for role in keys if docs_key(role) in example.command), None)
            for role in keys:
                if role == used or used is None:
                    continue
                got, answer = run(example, base, example.command.replace(docs_key(used), docs_key(role)))
                if (got == 403) == (role in example.roles):
                    failures.append(f"{example}: role {role} answered {got} but the section says "
                                    f"'Roles: {', '.join(example.roles)}': {answer[:200]}")
    assert not failures, "\n".join(failures)
