"""The Contracts page (docs/contracts.md) and the HTTP API page held to the code: commands and options, routes,
graph labels, environment variables, run files."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO
from tests.docs.docs_pages import FENCE, examples, page, reference, section

CONTRACTS = page("contracts.md")


def _contract_commands() -> dict[str, set[str]]:
    """`c360 ...` command (alternatives `a|b|c` expanded) -> the options its line names."""
    block = FENCE.search(section(CONTRACTS, "CLI")).group(3)
    out: dict[str, set[str]] = {}
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        words = line.split()
        head = [w for w in words[: next((i for i, w in enumerate(words) if w.startswith(("-", "["))), len(words))]]
        options = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", line))
        stems = [[]]
        for word in head:
            stems = [s + [alt] for s in stems for alt in word.split("|")]
        for stem in stems:
            out[" ".join(stem)] = options
    return out


def test_cli_commands_and_options_exist_and_every_command_is_named():
    parsers = reference.cli_commands()
    named = _contract_commands()
    unknown = sorted(set(named) - set(parsers))
    assert not unknown, f"docs/contracts.md names commands the parser does not have: {unknown}"
    unnamed = sorted(set(parsers) - set(named))
    assert not unnamed, f"commands missing from docs/contracts.md's CLI block: {unnamed}"
    for command, options in named.items():
        known = {o for a in parsers[command]._actions for o in a.option_strings}
        assert options <= known, f"{command}: docs/contracts.md names options it lacks: {sorted(options - known)}"


def test_http_routes_are_the_apps_both_ways():
    listed = set(re.findall(r"^- `(GET|POST|PUT|PATCH|DELETE) (/\S*)`", section(CONTRACTS, "HTTP"), re.M))
    routes = set(reference.app_routes())
    assert not sorted(listed - routes), f"docs/contracts.md lists routes the app lacks: {sorted(listed - routes)}"
    assert not sorted(routes - listed), f"routes missing from docs/contracts.md: {sorted(routes - listed)}"


def test_graph_labels_are_the_schemas():
    from c360.graph.schema import EDGES, VERTICES

    text = section(CONTRACTS, "Graph schema")
    for kind, labels in (("Vertex", VERTICES), ("Edge", EDGES)):
        line = re.search(rf"^{kind} labels: (.+)$", text, re.M).group(1)
        assert re.findall(r"`(\w+)`", line) == [label.name for label in labels], f"{kind} labels"


def test_environment_variables_exist():
    from c360.settings import ENV_VARS

    named = set(re.findall(r"`(C360_\w+)`", section(CONTRACTS, "Configuration")))
    assert named and named <= set(ENV_VARS), f"not in ENV_VARS: {sorted(named - set(ENV_VARS))}"


def test_run_files_are_the_layouts():
    from c360.layout import MatchOutput, RunLayout

    run = RunLayout(Path("R"))
    files = set()
    for name in dir(RunLayout):
        if isinstance(getattr(RunLayout, name), property):
            value = getattr(run, name)
            value = value.matched if isinstance(value, MatchOutput) else value
            if isinstance(value, Path):
                files.add(value.relative_to("R").as_posix())
    named = {f for f in re.findall(r"`([\w/.-]+\.\w+)`", section(CONTRACTS, "Publishing"))}
    assert named and named <= files, f"docs/contracts.md names run files RunLayout lacks: {sorted(named - files)}"


def test_every_endpoint_has_a_section_with_roles_and_a_request():
    """The HTTP API page has a `## METHOD /path` section with a `Roles:` line and a request (with its response) for
    every route of the app, and no section of a route the app lacks."""
    routes = set(reference.app_routes())
    sections = reference.endpoint_sections(page("api.md"))
    with_request = {e.endpoint for e in examples() if e.page == "api.md" and e.status is not None}
    assert not sorted(routes - with_request), f"docs/api.md: no request example for {sorted(routes - with_request)}"
    assert not sorted(set(sections) - routes), f"docs/api.md: sections of no route: {sorted(set(sections) - routes)}"
    no_roles = sorted(k for k, text in sections.items() if "\nRoles: " not in text)
    assert not no_roles, f"docs/api.md: sections without a 'Roles:' line: {no_roles}"


def test_the_readme_carries_no_request_the_tests_do_not_run():
    """The README sends readers to the docs' requests (run as written by test_examples.py) instead of carrying its
    own: a `curl` in it must be one of them, word for word."""
    readme = (REPO / "README.md").read_text()
    tested = {e.command for e in examples()}
    own = [block.group(3).strip() for block in FENCE.finditer(readme) if "curl " in block.group(3)]
    assert [c for c in own if c not in tested] == [], "README requests the docs' tests do not run"
