"""Neptune bulk-load CSV files: write typed vertex/edge tables, read them back with typed values.

Vertex file header: `~id,~label,<name>:<Type>(single)...`; edge file header: `~id,~from,~to,~label,<name>:<Type>...`,
each property typed as graph.schema declares it (`header`, graph.schema.csv_column); a cardinality is read and
dropped (`(single)`, `(set)`: one value per property here).
Quoting follows RFC 4180 (fields with commas, quotes or line breaks are quoted, quotes doubled, CRLF rows).
An empty cell means "no property". The export writes one label per file (graph.neptune_parts); a file may still
hold several labels (its columns are then the union of their properties).

How String values are written depends on where a file goes, named by one of `VALUE_FORMS`:
- EXACT (the default): as they are. Neptune's bulk loader and ours read a file so: every file bound for a loader
  (the export's parts, what is uploaded to S3) carries this form, or a value such as `-2+3` would arrive as `'-2+3`.
- SPREADSHEET: for a file a person opens in a spreadsheet, a value the spreadsheet would run as a formula (starting
  with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`, as OWASP advises; so does a value that itself
  starts with `'`, which keeps the escape reversible: read back with SPREADSHEET, exactly one leading `'` is
  stripped. Neptune's loader keeps the `'`: such files are for people, not for loading.
`cell_text` / `cell_value` are the only places the two forms differ (c360.io's `spreadsheet_safe`;
graph.neptune_parts does the same in Spark SQL from `FORMULA_STARTS`). Ids are written as they are (the product's
own ids never start with those characters).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from c360.errors import InputError
from c360.graph.schema import PROPERTY_TYPES, csv_column
from c360.io import atomic_path, from_spreadsheet, spreadsheet_safe

VERTEX_SYSTEM = ("~id", "~label")
EDGE_SYSTEM = ("~id", "~from", "~to", "~label")

_CASTS = {"String": str, "Int": int, "Long": int, "Short": int, "Byte": int, "Double": float, "Float": float,
          "Bool": lambda s: s.strip().lower() in ("true", "1"), "Boolean": lambda s: s.strip().lower() in ("true", "1"),
          "Date": str}


@dataclass
class Element:
    """One vertex (frm/to None) or edge with its properties (only non-empty values)."""

    id: str
    label: str
    props: dict = field(default_factory=dict)
    frm: str | None = None
    to: str | None = None


EXACT, SPREADSHEET = "exact", "spreadsheet"
VALUE_FORMS = (EXACT, SPREADSHEET)


def check_values(values: str) -> str:
    """`values` when it is one of VALUE_FORMS, else InputError."""
    if values not in VALUE_FORMS:
        raise InputError(f"values: {values!r} is not one of {', '.join(VALUE_FORMS)}")
    return values


def cell_text(text: str, values: str = EXACT) -> str:
    """A String value as a file of form `values` holds it: SPREADSHEET puts a leading `'` before a value a spreadsheet
    would read as a formula (or one that starts with `'` itself)."""
    return spreadsheet_safe(text) if values == SPREADSHEET else text


def cell_value(text: str, values: str = EXACT) -> str:
    """The inverse of `cell_text`."""
    return from_spreadsheet(text) if values == SPREADSHEET else text


def _fmt(value, typ: str, values: str) -> str:
    if value is None:
        return ""
    if typ in ("Int", "Long"):
        return str(int(value))
    if typ in ("Double", "Float"):
        return repr(float(value))
    return cell_text(str(value), values) if typ == "String" else str(value)


def header(names, edges: bool) -> list[str]:
    """A Neptune CSV header: the system columns, then each property's column (graph.schema.csv_column: its declared
    type, and on vertices its cardinality) in the order given (KeyError for an undeclared name: check with
    `undeclared` first)."""
    return [*(EDGE_SYSTEM if edges else VERTEX_SYSTEM), *[csv_column(n, edges) for n in names]]


def undeclared(names) -> list[str]:
    """The names that graph.schema declares no property (so no Neptune type) for."""
    return [n for n in names if n not in PROPERTY_TYPES]


def write_elements(path: Path, elements: list[Element], edges: bool, names=None, values: str = EXACT) -> Path:
    """Write elements to one Neptune CSV atomically; columns are `names` (default: the union of the elements'
    property names), sorted; String values in form `values` (see the module docstring)."""
    check_values(values)
    names = sorted(names if names is not None else {k for e in elements for k in e.props})
    unknown = undeclared(names)
    if unknown:
        raise InputError(f"{path.name}: no Neptune type declared for propert(y/ies) {', '.join(unknown)}")
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, dialect="excel")  # RFC 4180: QUOTE_MINIMAL, doubled quotes, CRLF
            w.writerow(header(names, edges))
            for e in elements:
                head = [e.id, e.frm, e.to, e.label] if edges else [e.id, e.label]
                w.writerow(head + [_fmt(e.props.get(n), PROPERTY_TYPES[n], values) for n in names])
    return path


def _parse_header(path: Path, header: list[str], system: tuple[str, ...], values: str) -> list[tuple[str, object]]:
    if tuple(header[: len(system)]) != system:
        raise InputError(f"{path}: header must start with {','.join(system)} (found {','.join(header[:len(system)])})")
    cols = []
    for h in header[len(system):]:
        name, _, typ = h.partition(":")
        typ = typ.removesuffix("(single)").removesuffix("(set)") or "String"
        if typ not in _CASTS:
            raise InputError(f"{path}: column {h!r} has unsupported Neptune type {typ!r}")
        cols.append((name, (lambda s: cell_value(s, values)) if typ == "String" else _CASTS[typ]))
    return cols


def iter_elements(path: str | Path, edges: bool, values: str = EXACT):
    """The elements of one Neptune CSV whose String values are in form `values`, one at a time, with typed property
    values (empty cells skipped)."""
    check_values(values)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    system = EDGE_SYSTEM if edges else VERTEX_SYSTEM
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{path}: file is empty") from None
        cols = _parse_header(path, header, system, values)
        n = len(system)
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != n + len(cols):
                raise InputError(f"{path}: line {lineno} has {len(row)} fields, header has {n + len(cols)}")
            props = {}
            for (name, cast), raw in zip(cols, row[n:], strict=True):
                if raw != "":
                    try:
                        props[name] = cast(raw)
                    except ValueError:
                        raise InputError(f"{path}: line {lineno}, column {name}: bad value {raw!r}") from None
            if edges:
                yield Element(row[0], row[3], props, frm=row[1], to=row[2])
            else:
                yield Element(row[0], row[1], props)


def read_elements(path: str | Path, edges: bool, values: str = EXACT) -> list[Element]:
    """Read one Neptune CSV (String values in form `values`) back into elements with typed property values (empty
    cells skipped)."""
    return list(iter_elements(path, edges, values))
