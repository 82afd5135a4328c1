"""Match config, read from YAML: which input column plays which role, which other columns to compare and how,
identifier formats, blocking, the households rule and the threshold.

    id: rec_id                      # the record id column
    roles: {first_name: given_name, last_name: surname, date_of_birth: dob, zip: postcode, ...}
    columns:                        # any other column: a comparison type, optional options
      gender: exact
      occupation: {type: fuzzy, tf: true}
    formats:                        # identifier formats per role or column (default: any value is kept)
      ssn: {pattern: '\\d{9}'}       # regex the cleaned value must match in full; its group 1 is kept if it has one
      zip: {pattern: '(\\d{5})\\d{0,4}', pad: 5}
    date_format: "%Y%m%d"
    households: false               # true: relatives share contact fields; a clearly different first name vetoes
    blocking: {max_comparisons: auto, rules: [[last_name, date_of_birth], [ssn]]}   # rules: override the choice
    threshold: auto                 # or a match probability
    attach: {column: source, values: [park]}   # these records join the others' clusters: one person each, never two

Every problem raises InputError naming the file and the key or column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from c360.errors import InputError
from c360.io import read_yaml_file

TYPES = ("exact", "name", "fuzzy", "date", "postcode", "email", "phone", "identifier", "numeric")
# what each role is compared as
ROLE_TYPES = {"first_name": "name", "last_name": "name", "date_of_birth": "date", "ssn": "identifier",
              "street_number": "exact", "address": "fuzzy", "city": "exact", "zip": "postcode", "state": "exact",
              "home_phone": "phone", "email": "email", "company": "exact"}
KNOWN_ROLES = tuple(ROLE_TYPES)
PRESET = Path(__file__).parent / "presets" / "insurance.yaml"
TOP_KEYS = {"id", "roles", "columns", "formats", "date_format", "households", "blocking", "threshold", "attach"}
FIELD_KEYS = {"type", "tf", "pattern", "pad", "date_format", "thresholds", "nicknames"}
FORMAT_KEYS = {"pattern", "pad", "date_format"}
FORMAT_TYPES = ("identifier", "phone", "postcode")


@dataclass(frozen=True)
class Field:
    """One compared column: `name` is its standardized column (the role, or the custom column's cleaned name)."""

    name: str
    column: str                         # the input column
    type: str
    role: str | None = None
    tf: bool | None = None              # term-frequency adjustments; None = decided from the data's skew
    pattern: str | None = None          # identifier/phone/postcode format (full match; group 1 kept if any)
    pad: int | None = None              # left-pad all-digit values with zeros (postcodes read as numbers)
    date_format: str | None = None
    thresholds: tuple[float, ...] = (1.0,)   # numeric: absolute differences that still count as close
    nicknames: bool = False             # names: a nickname and its full form agree (English first names)


@dataclass(frozen=True)
class BlockingConfig:
    """`rules`: an override, each a list of field names or a SQL condition; `max_comparisons`: None = auto."""

    rules: tuple = ()
    max_comparisons: float | None = None


@dataclass(frozen=True)
class AttachConfig:
    """Records whose `column` holds one of `values` (accounts of another system) are clustered after the others:
    among themselves, then each group joined to at most one cluster of the others (its most probable link), so
    an account never joins two people the other records keep apart."""

    column: str
    values: tuple[str, ...]


@dataclass
class MatchConfig:
    id: str
    fields: list[Field]
    date_format: str = "%Y-%m-%d"
    households: bool = False
    blocking: BlockingConfig = BlockingConfig()
    threshold: float | None = None      # None = auto (from labels, else from the model's own estimate)
    attach: AttachConfig | None = None
    source: str = str(PRESET)
    raw: dict = field(default_factory=dict)

    @property
    def roles(self) -> dict[str, str]:
        """role -> input column, for the fields that play a role."""
        return {f.role: f.column for f in self.fields if f.role}

    @property
    def names(self) -> set[str]:
        return {f.name for f in self.fields}

    @property
    def columns(self) -> list[str]:
        """The input columns the config reads (id first)."""
        return list(dict.fromkeys([self.id, *(f.column for f in self.fields)]))

    def get(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def of_type(self, *types: str) -> list[Field]:
        return [f for f in self.fields if f.type in types]


def load_config(path: str | Path | None = None) -> MatchConfig:
    """Read a match config YAML (default: the insurance preset); InputError naming the file on any problem."""
    p = Path(path) if path else PRESET
    return parse_config(read_yaml_file(p, "match config not found"), str(p))


def parse_config(raw: dict, source: str = "config") -> MatchConfig:
    """Build a MatchConfig from the YAML's data; `source` names it in errors."""
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a mapping at the top level")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(TOP_KEYS))})")
    roles, columns = raw.get("roles") or {}, raw.get("columns") or {}
    if "id" not in raw or not isinstance(roles, dict) or not isinstance(columns, dict) or not (roles or columns):
        raise InputError(f"{source}: needs 'id' and a non-empty 'roles' or 'columns' mapping")
    bad_roles = [r for r in roles if r not in ROLE_TYPES]
    if bad_roles:
        raise InputError(f"{source}: unknown role(s) {', '.join(bad_roles)} (known: {', '.join(KNOWN_ROLES)})")
    formats = raw.get("formats") or {}
    if not isinstance(formats, dict):
        raise InputError(f"{source}: 'formats' must map a role or column to its format")
    date_format = str(raw.get("date_format", "%Y-%m-%d"))
    fields = [_role_field(role, str(col), formats.get(role), source) for role, col in roles.items()]
    taken = {f.name for f in fields}
    for col, spec in columns.items():
        f = _column_field(str(col), spec, formats.get(col), source)
        if f.name in taken:
            raise InputError(f"{source}: column {col}: its name {f.name!r} is already a role or column")
        taken.add(f.name)
        fields.append(f)
    stray = sorted(set(formats) - {f.role or f.column for f in fields} - {f.column for f in fields})
    if stray:
        raise InputError(f"{source}: formats for {', '.join(map(str, stray))}, which no role or column names")
    households = raw.get("households", False)
    if not isinstance(households, bool):
        raise InputError(f"{source}: households must be true or false (got {households!r})")
    cfg = MatchConfig(id=str(raw["id"]), fields=fields, date_format=date_format, households=households,
                      blocking=_blocking(raw.get("blocking"), _field_names(fields), source),
                      threshold=_threshold(raw.get("threshold", "auto"), source),
                      attach=_attach(raw.get("attach"), source), source=source, raw=raw)
    return cfg


def _attach(spec, source: str) -> AttachConfig | None:
    """`attach: {column: C, values: [V, ...]}`, or None when absent."""
    if spec is None:
        return None
    opts = _options(spec, "attach", source, {"column", "values"})
    values = opts.get("values")
    if not opts.get("column") or not isinstance(values, list) or not values:
        raise InputError(f"{source}: attach: needs a column and a non-empty list of values")
    return AttachConfig(str(opts["column"]), tuple(str(v) for v in values))


def _field_names(fields: list[Field]) -> dict[str, str]:
    """Every name a config may use for a field (its role or column, its standardized name) -> the field's name."""
    out = {f.column: f.name for f in fields}
    out.update({f.name: f.name for f in fields})
    return out


def _options(spec, where: str, source: str, allowed: set[str]) -> dict:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise InputError(f"{source}: {where}: expected a mapping of options (got {spec!r})")
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise InputError(f"{source}: {where}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")
    return dict(spec)


def _role_field(role: str, column: str, fmt, source: str) -> Field:
    opts = _options(fmt, f"format of {role}", source, FORMAT_KEYS)
    return _make_field(role, column, ROLE_TYPES[role], role, opts, source, f"role {role}",
                       nicknames=role == "first_name")


def _column_field(column: str, spec, fmt, source: str) -> Field:
    where = f"column {column}"
    if isinstance(spec, str):
        spec = {"type": spec}
    opts = _options(spec, where, source, FIELD_KEYS)
    opts.update(_options(fmt, f"format of {column}", source, FORMAT_KEYS))
    kind = opts.pop("type", None)
    if kind not in TYPES:
        raise InputError(f"{source}: {where}: unknown type {kind!r} (known: {', '.join(TYPES)})")
    name = re.sub(r"\W+", "_", column).strip("_").lower() or "column"
    if _is_sql_keyword(name):  # Splink's column checks lose a keyword column ("by", "order")
        name = f"col_{name}"
    return _make_field(name, column, kind, None, opts, source, where, nicknames=bool(opts.pop("nicknames", False)))


def _make_field(name, column, kind, role, opts, source, where, nicknames) -> Field:
    tf = opts.get("tf", "auto")
    if tf not in (True, False, "auto"):
        raise InputError(f"{source}: {where}: tf must be true, false or auto (got {tf!r})")
    pattern = opts.get("pattern")
    if pattern is not None:
        if kind not in FORMAT_TYPES:
            raise InputError(f"{source}: {where}: a pattern applies to {', '.join(FORMAT_TYPES)} (type is {kind})")
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise InputError(f"{source}: {where}: bad pattern {pattern!r}: {exc}") from exc
    pad = opts.get("pad")
    if pad is not None and (not isinstance(pad, int) or pad < 1):
        raise InputError(f"{source}: {where}: pad must be a positive integer (got {pad!r})")
    thresholds = opts.get("thresholds", [1.0])
    try:
        thresholds = tuple(sorted(float(t) for t in (thresholds if isinstance(thresholds, list) else [thresholds])))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: {where}: thresholds must be numbers (got {thresholds!r})") from exc
    return Field(name=name, column=column, type=kind, role=role, tf=None if tf == "auto" else tf,
                 pattern=str(pattern) if pattern is not None else None, pad=pad,
                 date_format=opts.get("date_format"), thresholds=thresholds, nicknames=nicknames)


def _is_sql_keyword(name: str) -> bool:
    """True when an engine's SQL quotes the name (a reserved word there)."""
    from sqlglot import exp
    return any(exp.column(name).sql(dialect) != name for dialect in ("duckdb", "spark"))


def _blocking(spec, names: dict[str, str], source: str) -> BlockingConfig:
    opts = _options(spec, "blocking", source, {"rules", "max_comparisons"})
    budget = opts.get("max_comparisons", "auto")
    if budget != "auto" and (not isinstance(budget, (int, float)) or budget < 1):
        raise InputError(f"{source}: blocking.max_comparisons must be a positive number or auto (got {budget!r})")
    rules = []
    for rule in opts.get("rules") or []:
        if isinstance(rule, str):
            rules.append(rule)
            continue
        if not isinstance(rule, list) or not rule:
            raise InputError(f"{source}: blocking rule {rule!r}: expected a list of field names or a SQL string")
        unknown = [c for c in rule if c not in names]
        if unknown:
            raise InputError(f"{source}: blocking rule {rule}: unknown field(s) {', '.join(map(str, unknown))} "
                             f"(fields: {', '.join(sorted(names))})")
        rules.append(tuple(names[c] for c in rule))
    return BlockingConfig(rules=tuple(rules), max_comparisons=None if budget == "auto" else float(budget))


def _threshold(value, source: str) -> float | None:
    if value in (None, "auto"):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise InputError(f"{source}: threshold must be auto or a probability between 0 and 1 (got {value!r})")
    return float(value)
