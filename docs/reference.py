"""The reference parts of the documentation, rendered from the code at build time so they cannot drift: the CLI
from the `c360` argparse tree, the configuration from the settings models and ENV_VARS, the HTTP API from the app's
OpenAPI document and its routes' dependencies, the roles from ROLE_GRANTS, the graph schema's picture from
graph/schema.py. Each function returns Markdown (the picture: SVG); docs/hooks.py puts them into the pages and the
tests in tests/docs read the same functions."""

from __future__ import annotations

import argparse
import html
import inspect
import json
import re
from typing import Any

from pydantic import BaseModel

# ---- CLI ------------------------------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_parsers(parser: argparse.ArgumentParser | None = None, prefix: str = "c360") -> dict[str, Any]:
    """Every parser of the `c360` tree, groups included (`"c360 er"`, `"c360 er match"`), depth first."""
    if parser is None:
        from c360.cli import build_parser

        parser = build_parser()
    out: dict[str, Any] = {prefix: parser}
    for name, sub in _subcommands(parser).items():
        out.update(cli_parsers(sub, f"{prefix} {name}"))
    return out


def cli_commands(parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """Every runnable `c360` command (`"c360 er match"`, a parser without subcommands) -> its parser."""
    return {name: p for name, p in cli_parsers(parser).items() if not _subcommands(p)}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    """The one-line help its parent gave subcommand `name` (argparse keeps it on the parent's choices_actions)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _prose(text: str) -> str:
    """A comment or docstring as table-cell text: `<` and `>` outside code spans escaped (`hit@<k>` is no tag)."""
    spans = str(text).split("`")
    return _cell("`".join(html.escape(s, quote=False).replace("*", "\\*") if i % 2 == 0 else s
                          for i, s in enumerate(spans)))


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)):
            continue
        names = ", ".join(action.option_strings) or action.dest
        if action.option_strings and action.nargs != 0:
            names += f" {action.metavar or action.dest.upper()}"
        details = []
        if action.choices:
            details.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
        if action.required or not action.option_strings:
            details.append("required")
        elif action.default not in (None, False, argparse.SUPPRESS, []):
            details.append(f"default `{action.default}`")
        if action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction):
            details.append("repeatable")
        rows.append(f"| `{_cell(names)}` | {_prose(action.help or '')} | {'; '.join(details)} |")
    return rows


def cli_markdown() -> str:
    """One section per command: what it does, its usage line and a table of its options."""
    from c360.cli import build_parser

    every = cli_parsers(build_parser())
    parts = []
    for name, parser in every.items():
        if _subcommands(parser):
            continue
        words = name.split()
        parent = every[" ".join(words[:-1])]
        usage = parser.format_usage().removeprefix("usage: ").strip()
        usage = re.sub(r"\s+", " ", usage).replace(" [-h]", "")
        lines = [f"### `{name}`", ""]
        summary = _help_of(parent, words[-1]) or parser.description or ""
        if summary:
            lines += [summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else "."), ""]
        lines += ["```", usage, "```", ""]
        rows = _option_rows(parser)
        if rows:
            lines += ["| option | what | default, choices |", "| --- | --- | --- |", *rows, ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


# ---- configuration --------------------------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    text = text or str(annotation).replace("typing.", "")
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    text = re.sub(r"\b(?:c360\.[\w.]+|pathlib)\.(\w+)", r"\1", text)
    text = re.sub(r"^Optional\[(.*)\]$", r"\1 | None", text)
    return text.replace("NoneType", "None").replace(" | ", " or ")   # a pipe would end the table cell


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    if hasattr(value, "as_posix"):
        value = value.as_posix()
        value = re.sub(r"^/\w+(/\w+)?/\.cache", "~/.cache", value)  # the home of whoever builds the docs
    return f"`{json.dumps(value, default=str)}`"


def _constraints(field) -> str:
    out = []
    for meta in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(meta, attr, None) is not None:
                out.append(f"{sign} {getattr(meta, attr)}")
    return ", ".join(out)


def _field_comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comments the settings module gives it (the lines just above it and its trailing ones):
    the settings say why in comments, and this page shows them beside each setting."""
    lines, _ = inspect.getsourcelines(model)
    out: dict[str, str] = {}
    above: list[str] = []
    current = None
    for line in lines:
        text = line.strip()
        field = re.match(r"^    (\w+): ", line)
        if field and not text.startswith("#"):
            current = field.group(1)
            trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            out[current] = " ".join([*above, trailing]).strip()
            above = []
        elif text.startswith("#"):
            if current and line.startswith(" " * 8):  # a trailing comment continued under the previous field
                out[current] = f"{out[current]} {text.lstrip('# ')}".strip()
            else:
                above.append(text.lstrip("# "))
                current = None
        else:
            above, current = [], None if not text else current
    return out


def _model_rows(model: type[BaseModel], prefix: str, env: dict[tuple[str, ...], str]) -> list[str]:
    rows = []
    comments = _field_comments(model)
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = (*prefix, name) if prefix else (name,)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue  # a section: its own table
        var = env.get(path)
        bounds = _constraints(field)
        rows.append(f"| `{'.'.join(path)}`{f'<br>`{var}`' if var else ''} | `{_cell(_type_name(annotation))}`"
                    f"{f' ({bounds})' if bounds else ''} | {_cell(_default(field))} | {_prose(comments.get(name, ''))} |")
    return rows


def config_markdown() -> str:
    """A table per settings section (the YAML file's top-level keys) and the environment variables."""
    from c360.settings import CONFIG_ENV, ENV_VARS, Settings

    env = {path: var for var, path in ENV_VARS.items()}
    header = ["| setting, environment | type | default | what |", "| --- | --- | --- | --- |"]
    parts = ["### Top level", "", *header, *_model_rows(Settings, (), env), ""]
    todo = [((name,), field.annotation) for name, field in Settings.model_fields.items()]
    while todo:  # every section, and the sections inside it, depth first
        path, model = todo.pop(0)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        doc = " ".join((model.__doc__ or "").split())
        parts += [f"### `{'.'.join(path)}`", "", _prose(doc), "", *header, *_model_rows(model, path, env), ""]
        todo[:0] = [((*path, name), field.annotation) for name, field in model.model_fields.items()]
    parts += ["### Environment variables", "", "| variable | setting |", "| --- | --- |"]
    parts += [f"| `{var}` | `{'.'.join(path)}` |" for var, path in ENV_VARS.items()]
    parts += [f"| `{CONFIG_ENV}` | the YAML file itself (what `--config` names) |", ""]
    return "\n".join(parts)


# ---- roles and HTTP -------------------------------------------------------------------------------------------


def roles_markdown() -> str:
    """The roles and what each grants (api.dependencies.ROLE_GRANTS)."""
    from c360.api.dependencies import ROLE_GRANTS

    rows = [f"| `{role}` | {', '.join(f'`{g}`' for g in sorted(grants))} |" for role, grants in ROLE_GRANTS.items()]
    return "\n".join(["| role | grants |", "| --- | --- |", *rows, ""])


def openapi_app():
    """The app as `c360 serve` builds it (no warehouse is read to build its OpenAPI document)."""
    from c360.api.app import create_app
    from c360.settings import Settings

    return create_app(Settings(warehouse="warehouse"))


def app_routes(app=None) -> dict[tuple[str, str], Any]:
    """(METHOD, path) -> route of every API route of the app."""
    from c360.api.dependencies import api_routes

    app = app or openapi_app()
    return {(m, r.path): r for r in api_routes(app) for m in sorted(r.methods) if m != "HEAD"}


def route_roles(route) -> list[str] | None:
    """The roles whose grants cover what the route's dependencies require (None: a public route)."""
    from c360.api.dependencies import PUBLIC_PATHS, ROLE_GRANTS, require_role

    if route.path in PUBLIC_PATHS:
        return None
    needs, todo = set(), list(route.dependant.dependencies)
    while todo:
        dep = todo.pop()
        needs |= {role for role in ROLE_GRANTS if dep.call is require_role(role)}
        todo += dep.dependencies
    return [role for role, grants in ROLE_GRANTS.items() if needs <= grants]


_ENDPOINT_HEADING = re.compile(r"^## (GET|POST|PUT|PATCH|DELETE) (/\S*)\s*$", re.M)


def endpoint_sections(markdown: str) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> the text of each `## METHOD /path` section of a page (up to the next `## `)."""
    out = {}
    starts = [m for m in re.finditer(r"^## ", markdown, re.M)]
    for i, start in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(markdown)
        m = _ENDPOINT_HEADING.match(markdown, start.start())
        if m:
            out[(m.group(1), m.group(2))] = markdown[start.start():end]
    return out


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _schema_type(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_schema_type(s, components) for s in schema[key])
    if schema.get("type") == "array":
        return f"list of {_schema_type(schema.get('items', {}), components)}"
    extra = schema.get("additionalProperties")
    if schema.get("type") == "object" and isinstance(extra, dict):
        return f"map of {_schema_type(extra, components)}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return schema.get("type", "any")


def _fields_table(schema: dict, components: dict) -> list[str]:
    schema = _resolve(schema, components)
    props = schema.get("properties", {})
    if not props:
        return []
    required = set(schema.get("required", ()))
    rows = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for name, prop in props.items():
        bounds = ", ".join(f"{k} {prop[k]}" for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum",
                                                        "minLength", "maxLength", "pattern") if k in prop)
        desc = " ".join(x for x in (prop.get("description", ""), f"({bounds})" if bounds else "") if x)
        rows.append(f"| `{name}` | {_cell(_schema_type(prop, components))} | {'yes' if name in required else ''} | "
                    f"{_prose(desc)} |")
    return rows


def _models_used(schema: dict, components: dict, seen: list[str]) -> list[str]:
    """The component names a schema refers to, depth first (each once)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            seen.append(name)
            _models_used(components[name], components, seen)
        return seen
    for value in schema.values():
        if isinstance(value, dict):
            _models_used(value, components, seen)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _models_used(item, components, seen)
    return seen


def _example_request(method: str, path: str, op: dict, roles: list[str] | None) -> str:
    """A request built from the OpenAPI document alone, for an endpoint the page has no checked example of."""
    key = f' -H "X-API-Key: docs-{roles[0]}"' if roles else ""
    body = ' -H "Content-Type: application/json" -d \'{...}\'' if "requestBody" in op else ""
    verb = "" if method == "GET" else f" -X {method}"
    return f'```bash\ncurl -s{verb}{key}{body} "$C360{path}"\n```'


def endpoint_reference(method: str, path: str, op: dict, components: dict) -> str:
    """What the OpenAPI document says of one operation: summary, description, parameters, body, responses."""
    lines = []
    if op.get("summary"):
        lines += [f"**{html.escape(op['summary'])}.** " + _prose(" ".join((op.get("description") or "").split())), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "| --- | --- | --- | --- | --- |"]
        for p in params:
            schema = p.get("schema", {})
            default = f" (default `{json.dumps(schema['default'])}`)" if "default" in schema else ""
            lines.append(f"| `{p['name']}` | {p['in']} | {_cell(_schema_type(schema, components))} | "
                         f"{'yes' if p.get('required') else ''} | {_prose(p.get('description', ''))}{default} |")
        lines.append("")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    models: list[str] = []
    if body:
        lines += [f"Request body (`Content-Type: application/json`): {_schema_type(body, components)}.", ""]
        models = _models_used(body, components, [])
    responses = op.get("responses", {})
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, resp in sorted(responses.items()):
        content = resp.get("content", {})
        media, spec = next(iter(content.items()), (None, {}))
        schema = spec.get("schema") if spec else None
        shown = _schema_type(schema, components) if schema else ""
        if media and media != "application/json":
            shown = f"{media}"
        lines.append(f"| {status} | {_cell(resp.get('description', ''))} | {_cell(shown)} |")
    lines.append("")
    ok = next((r for s, r in sorted(responses.items()) if s.startswith("2")), {})
    ok_schema = ok.get("content", {}).get("application/json", {}).get("schema")
    if ok_schema:
        for name in _models_used(ok_schema, components, []):
            if name not in models:
                models.append(name)
    for name in models:
        rows = _fields_table({"$ref": f"#/components/schemas/{name}"}, components)
        if rows:
            lines += [f'??? note "{name}"', "", *("    " + r for r in rows), ""]
    return "\n".join(lines)


def http_markdown(page: str) -> str:
    """The page with its `## METHOD /path` sections completed from the OpenAPI document, and a section for every
    route the page does not have yet (with a request built from the document, not yet checked against a run)."""
    app = openapi_app()
    doc = app.openapi()
    components = doc.get("components", {}).get("schemas", {})
    routes = app_routes(app)
    sections = endpoint_sections(page)
    out = page
    for (method, path), text in sections.items():
        op = doc["paths"].get(path, {}).get(method.lower())
        if op is None:
            continue  # the contract test names it: a section of a route the app does not have
        out = out.replace(text, text.rstrip() + "\n\n" + endpoint_reference(method, path, op, components) + "\n\n",
                          1)
    missing = [k for k in routes if k not in sections]
    for method, path in missing:
        route = routes[(method, path)]
        op = doc["paths"].get(path, {}).get(method.lower())
        roles = route_roles(route)
        who = "public" if roles is None else ", ".join(roles)
        out += (f"\n## {method} {path}\n\nRoles: {who} (from the route's dependencies).\n\n"
                f"{_example_request(method, path, op or {}, roles)}\n\n")
        # a route outside the OpenAPI document (an HTML page): its docstring
        out += (endpoint_reference(method, path, op, components) if op is not None else
                " ".join((route.description or "").split())) + "\n"
    return out


# ---- graph schema picture -------------------------------------------------------------------------------------

# where each vertex label is drawn (column, row); a label added to graph/schema.py lands in the next free place
_PLACES = {"match": (2, 0), "customer": (1, 1), "visitor": (3, 1), "policy": (0, 2), "address": (1, 3),
           "vehicle": (0, 4), "attraction": (3, 3)}
_BOX_W, _COL_W, _ROW_H, _LINE = 190, 230, 150, 15


def graph_svg() -> str:
    """The vertex labels (with their properties and types) and the edge labels between them, as one SVG."""
    from c360.graph.schema import EDGES, VERTICES

    places = dict(_PLACES)
    free = ((c, r) for r in range(5, 50) for c in range(4))
    for v in VERTICES:
        if v.name not in places:
            places[v.name] = next(free)
    boxes: dict[str, tuple[float, float, float, float]] = {}
    parts = []
    for v in VERTICES:
        col, row = places[v.name]
        height = 24 + _LINE * len(v.properties) + 6
        x, y = 20 + col * _COL_W, 20 + row * _ROW_H
        boxes[v.name] = (x, y, _BOX_W, height)
        parts.append(f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{height}" rx="6" class="v"/>')
        parts.append(f'<text x="{x + _BOX_W / 2}" y="{y + 17}" class="vl">{html.escape(v.name)}</text>')
        for i, p in enumerate(v.properties):
            parts.append(f'<text x="{x + 8}" y="{y + 38 + i * _LINE}" class="p">{html.escape(p.name)}: '
                         f'{p.type}</text>')
    edges = [(e, frm.name, to.name) for e in EDGES for frm, to in e.ends]
    count: dict[frozenset, int] = {}
    for _, frm, to in edges:
        count[frozenset((frm, to))] = count.get(frozenset((frm, to)), 0) + 1
    nth: dict[frozenset, int] = {}
    labelled: set[str] = set()
    for e, frm, to in edges:
        pair = frozenset((frm, to))
        n = nth[pair] = nth.get(pair, -1) + 1
        (x1, y1), (x2, y2) = _anchor(boxes[frm], boxes[to]), _anchor(boxes[to], boxes[frm])
        bend = 120 * (n - (count[pair] - 1) / 2)  # parallel edges of one pair fan out symmetrically
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1)
        cx, cy = mx - bend * (y2 - y1) / length, my + bend * (x2 - x1) / length
        parts.append(f'<path d="M{x1:.0f},{y1:.0f} Q{cx:.0f},{cy:.0f} {x2:.0f},{y2:.0f}" class="e" '
                     f'marker-end="url(#arrow)"/>')
        lx, ly = (mx + cx) / 2, (my + cy) / 2   # the curve's apex
        anchor = "middle" if abs(lx - mx) < 1 else "end" if lx < mx else "start"
        lx += {"middle": 0, "end": -6, "start": 6}[anchor]
        text = [e.name]
        if e.properties and e.name not in labelled:  # an edge label's properties once, on its first pair of ends
            labelled.add(e.name)
            text += [f"{p.name}: {p.type}" for p in e.properties]
        for i, line in enumerate(text):
            parts.append(f'<text x="{lx:.0f}" y="{ly + i * 13:.0f}" text-anchor="{anchor}" '
                         f'class="{"el" if i == 0 else "ep"}">{html.escape(line)}</text>')
    width = 40 + 4 * _COL_W
    height = 20 + max(y + h for _, y, _, h in boxes.values())
    style = ("<style>.v{fill:#eef3fb;stroke:#3f51b5;stroke-width:1.5}.vl{font:bold 14px sans-serif;"
             "text-anchor:middle;fill:#1a237e}.p{font:11px monospace;fill:#333}.e{fill:none;stroke:#555;"
             "stroke-width:1.3}.el{font:bold 12px sans-serif;fill:#b71c1c;paint-order:stroke;"
             "stroke:#fff;stroke-width:4px}.ep{font:10px monospace;fill:#555;paint-order:stroke;"
             "stroke:#fff;stroke-width:3px}</style>")
    defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="graph schema: vertex and edge labels">'
            f"<title>c360 graph schema</title>{style}{defs}{''.join(parts)}</svg>\n")


def _anchor(box, other) -> tuple[float, float]:
    """Where a line from `box` towards `other` leaves `box`'s border."""
    x, y, w, h = box
    ox, oy, ow, oh = other
    cx, cy, tx, ty = x + w / 2, y + h / 2, ox + ow / 2, oy + oh / 2
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(w / 2 / abs(dx) if dx else float("inf"), h / 2 / abs(dy) if dy else float("inf"))
    return cx + dx * scale, cy + dy * scale
