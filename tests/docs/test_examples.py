"""Every request of the docs, run as written (bash, curl) against a served run: the status its response block
states, a body of the same shape (the same keys, all the way down; values differ from run to run), and, on the
HTTP API page, the roles its section names: each of them is let in, every other role gets 403."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.docs.docs_pages import Example, docs_key, examples

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


def shape_differences(documented, actual, where: str = "") -> list[str]:
    """Where two JSON values differ in shape: the keys of objects (recursively), the first items of lists that both
    have; a null on either side matches anything (a value the run may or may not have)."""
    if documented is None or actual is None:
        return []
    if isinstance(documented, dict) and isinstance(actual, dict):
        out = [f"{where}: keys documented only {sorted(set(documented) - set(actual))}, answered only "
               f"{sorted(set(actual) - set(documented))}"] if set(documented) != set(actual) else []
        for key in set(documented) & set(actual):
            out += shape_differences(documented[key], actual[key], f"{where}.{key}")
        return out
    if isinstance(documented, list) and isinstance(actual, list):
        return shape_differences(documented[0], actual[0], f"{where}[0]") if documented and actual else []
    if isinstance(documented, (dict, list)) != isinstance(actual, (dict, list)):
        return [f"{where}: documented {type(documented).__name__}, answered {type(actual).__name__}"]
    return []


def test_examples_run_as_written(served_docs):
    base, keys = served_docs
    found = examples()
    assert len(found) >= 10, f"only {len(found)} request examples found in docs/"
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
            failures += [f"{example}: {d}" for d in shape_differences(documented, answered)]
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
