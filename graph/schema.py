"""The customer-360 property graph's schema, declared once: every vertex and edge label, its properties and their
types, how its ids are spelled and which labels an edge joins.

Everything that spells the graph derives from this module or is checked against it:

- the exports (graph.spark_graph with Spark, graph.export record by record) build each label's elements from
  `VERTEX_PROPS` / `EDGE_PROPS` and the label objects; an element with a property its label does not declare is
  refused (`check_properties`), so a misspelt name fails instead of vanishing from the CSV;
- the Neptune bulk-load CSV (graph.neptune_csv, graph.neptune_parts) types its columns by `PROPERTY_TYPES`
  (`name:Type`, `name:Type(single)` for vertices: `csv_column`), each label's header being `csv_columns()` after the
  system columns;
- the stores (graph.store, graph.gremlin_store, graph.networkx_store) traverse by these labels and pick the
  answer fields through `fields()`, which refuses a name the label does not declare;
- the API's response models (api.schemas), the nightly's expected label counts (jobs.steps, for the graph gate) and
  the exploration notebook are checked against it by tests/graph/test_schema.py.

To add a label: declare it here (a `VertexLabel` in `VERTICES`, or an `EdgeLabel` in `EDGES`, with its properties),
then make the two exports produce it (graph.spark_graph and graph.export; tests/graph/test_export.py checks they
agree and test_schema.py that every declared label is exported from the sample), and let the stores answer it if
a query needs it.

Property types are Neptune's bulk-load types; one property name has one type on every label (a CSV column is typed
by its name).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from c360.entity_resolution.sources import PARK_ACCOUNTS

# ---- types ------------------------------------------------------------------------------------------------

STRING, INT, DOUBLE = "String", "Int", "Double"
#: Neptune type -> (Python type of a value, Spark SQL type of the export's column)
TYPES: dict[str, tuple[type, str]] = {STRING: (str, "string"), INT: (int, "bigint"), DOUBLE: (float, "double")}


@dataclass(frozen=True)
class Property:
    """A property: its name, its Neptune type and what it holds."""

    name: str
    type: str = STRING
    doc: str = ""

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"property {self.name}: type {self.type!r} is not one of {', '.join(TYPES)}")

    @property
    def column(self) -> str:
        """The Neptune bulk-load CSV column: `name:Type`."""
        return f"{self.name}:{self.type}"

    @property
    def python_type(self) -> type:
        return TYPES[self.type][0]

    @property
    def spark_type(self) -> str:
        return TYPES[self.type][1]


@dataclass(frozen=True)
class _Label:
    name: str
    properties: tuple[Property, ...] = ()
    doc: str = ""

    @cached_property  # read for every element the stores and the local export write
    def names(self) -> tuple[str, ...]:
        """The property names, in declaration order."""
        return tuple(p.name for p in self.properties)

    @cached_property
    def name_set(self) -> frozenset[str]:
        return frozenset(self.names)

    def fields(self, *names: str) -> tuple[str, ...]:
        """`names`, each checked to be a property of this label (ValueError otherwise): for code that picks some."""
        unknown = [n for n in names if n not in self.name_set]
        if unknown:
            raise ValueError(f"{self.name}: no property {', '.join(unknown)} (declared: {', '.join(self.names)})")
        return names

    def csv_columns(self) -> list[str]:
        """The property columns of this label's Neptune CSV (`csv_column`, sorted by name)."""
        return [csv_column(p.name, isinstance(self, EdgeLabel)) for p in sorted(self.properties, key=lambda p: p.name)]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class VertexLabel(_Label):
    """A vertex label. `id_prefix`: its ids are the prefix + a key (`policy:` + the customer record's id); None:
    the key itself (a record id, a match id, an attraction's item id)."""

    id_prefix: str | None = None

    def vertex_id(self, key) -> str:
        """The id of this label's vertex for `key`."""
        return f"{self.id_prefix or ''}{key}"


EDGE_ID_ARROW = "->"


@dataclass(frozen=True)
class EdgeLabel(_Label):
    """An edge label; `ends`: the (from, to) vertex labels it joins. Its ids are `<label>:<from>-><to>`, or
    `<label>:<qualifier>:<from>-><to>` where one pair has several (a recommendation per model)."""

    ends: tuple[tuple[VertexLabel, VertexLabel], ...] = ()

    def id_head(self, qualifier: str | None = None) -> str:
        """What an edge id starts with: `<label>:` (or `<label>:<qualifier>:`)."""
        return f"{self.name}:" if qualifier is None else f"{self.name}:{qualifier}:"

    def edge_id(self, frm: str, to: str, qualifier: str | None = None) -> str:
        """The id of this label's edge from `frm` to `to`."""
        return f"{self.id_head(qualifier)}{frm}{EDGE_ID_ARROW}{to}"


# ---- vertices ---------------------------------------------------------------------------------------------

NAME = Property("name", doc="what a person reads: a customer's or match's full name, an address on one line, ...")

#: the customer properties copied from the merged record (c360.entity_resolution's columns), in this order
_CUSTOMER_RECORD = (
    Property("first_name"), Property("last_name"), Property("company"), Property("date_of_birth"),
    Property("ssn"), Property("home_phone"), Property("source", doc="the record's source table: auto, property"),
)
CUSTOMER = VertexLabel("customer", (
    NAME,
    Property("first_name_lc", doc="first_name lower-cased: the search key"),
    Property("last_name_lc", doc="last_name lower-cased: the search key"),
    *_CUSTOMER_RECORD,
), doc="one source record of a person (id: the record's id)")
CUSTOMER_RECORD_PROPS: tuple[str, ...] = tuple(p.name for p in _CUSTOMER_RECORD)

MERGED_FROM_SEP = ";"
MATCH = VertexLabel("match", (
    NAME, Property("records", INT, "the customers SameAs it (insurance records)"),
    Property("accounts", INT, "the visitors SameAs it (theme-park app accounts)"),
    Property("merged_from", doc="the previous run's match ids merged into it, ascending, joined by `;` (`12;40`): "
                                "absent when none (c360.entity_resolution.id_changes)"),
    Property("split_from", doc="on an id this run created for records split off previous ids: those ids, "
                               "ascending, joined by `;` like merged_from; absent on any other id "
                               "(c360.entity_resolution.id_changes.split_from)"),
), doc="one person as entity resolution found them (id: the match_id)")


def format_match_ids(ids) -> str | None:
    """`match.merged_from` or `match.split_from` of match ids: ascending, joined by `;` (None when there is none)."""
    return MERGED_FROM_SEP.join(str(int(i)) for i in sorted(int(i) for i in ids)) or None


POLICY = VertexLabel("policy", (
    NAME, Property("line", doc="auto, property"), Property("policy_number"), Property("property_type"),
    Property("year_built", INT), Property("insured_value", DOUBLE),
), doc="a customer record's policy", id_prefix="policy:")

VEHICLE = VertexLabel("vehicle", (
    NAME, Property("vin"), Property("make"), Property("model"), Property("year", INT), Property("color"),
), doc="an insured vehicle", id_prefix="vehicle:")

ADDRESS = VertexLabel("address", (
    NAME, Property("address", doc="the street"), Property("city"), Property("state"), Property("zip"),
), doc="a postal address (id: 12 hex of a hash of the normalised address)", id_prefix="address:")

ATTRACTION = VertexLabel("attraction", (
    NAME, Property("park"), Property("theme"),
), doc="a theme-park attraction (id: its item id, `park:poi`)")

#: the matched table's `source` of a theme-park app account: such a row is a visitor (`visitor:<id>`), not a customer
ACCOUNT_SOURCE = PARK_ACCOUNTS.line   # declared with the accounts table (entity_resolution.sources)
#: the visitor properties copied from an account's matched row (the contract of er/matched.parquet), in this order
_ACCOUNT_RECORD = (
    Property("first_name"), Property("last_name"), Property("date_of_birth"), Property("home_phone"),
    Property("email"), Property("zip"),
)
PARK_TRIPS_SEP, PARK_TRIPS_EQ = ";", "="
VISITOR = VertexLabel("visitor", (
    NAME, Property("user_id", doc="the USER_ID of the interactions, recommendations and trips (an account's id)"),
    *_ACCOUNT_RECORD,
    Property("park_trips", doc="trips per park, `park=n` sorted by park and joined by `;` (`caliAdv=3;epcot=1`): "
                               "a trip spans many attractions, so this is not a sum over visited edges"),
), doc="a park visitor; an app account when the matched table has it (id: the USER_ID)", id_prefix="visitor:")
ACCOUNT_RECORD_PROPS: tuple[str, ...] = tuple(p.name for p in _ACCOUNT_RECORD)


def format_park_trips(counts: dict[str, int]) -> str | None:
    """`visitor.park_trips` of {park: trips}: `park=n` sorted by park, joined by `;` (None when empty)."""
    return PARK_TRIPS_SEP.join(f"{p}{PARK_TRIPS_EQ}{int(n)}" for p, n in sorted(counts.items())) or None


def parse_park_trips(text: str | None) -> dict[str, int]:
    """{park: trips} of a `visitor.park_trips` value (empty for None or "")."""
    out: dict[str, int] = {}
    for part in (text or "").split(PARK_TRIPS_SEP):
        park, eq, n = part.rpartition(PARK_TRIPS_EQ)
        if eq:
            out[park] = int(n)
    return out

VERTICES: tuple[VertexLabel, ...] = (CUSTOMER, MATCH, POLICY, VEHICLE, ADDRESS, ATTRACTION, VISITOR)

# ---- edges ------------------------------------------------------------------------------------------------

SAME_AS = EdgeLabel("SameAs", ends=((CUSTOMER, MATCH), (VISITOR, MATCH)),
                   doc="a record (an insurance customer record, a park app account) is this person")
COVERS = EdgeLabel("covers", ends=((CUSTOMER, POLICY), (POLICY, VEHICLE)), doc="a record's policy, a policy's vehicle")
LOCATED_AT = EdgeLabel("locatedAt", ends=((CUSTOMER, ADDRESS), (POLICY, ADDRESS), (VEHICLE, ADDRESS)),
                       doc="where a record, a policy or a vehicle is")
VISITED = EdgeLabel("visited", (
    Property("photos", INT, "photos taken there (or interactions)"),
    Property("last_visit", INT, "epoch seconds of the latest visit (from the trips; absent without them)"),
    Property("trips", INT, "the visitor's trips that included it (from the trips; absent without them)"),
), ends=((VISITOR, ATTRACTION),))
RECOMMENDED = EdgeLabel("recommended", (
    Property("score", DOUBLE), Property("rank", INT), Property("model", doc="the recommender that ranked it"),
), ends=((VISITOR, ATTRACTION),), doc="one model's recommendation (id qualified by the model)")

EDGES: tuple[EdgeLabel, ...] = (SAME_AS, COVERS, LOCATED_AT, VISITED, RECOMMENDED)

# ---- derived views ----------------------------------------------------------------------------------------

VERTEX_LABELS: dict[str, VertexLabel] = {v.name: v for v in VERTICES}
EDGE_LABELS: dict[str, EdgeLabel] = {e.name: e for e in EDGES}
#: label name -> its property names (declaration order)
VERTEX_PROPS: dict[str, tuple[str, ...]] = {v.name: v.names for v in VERTICES}
EDGE_PROPS: dict[str, tuple[str, ...]] = {e.name: e.names for e in EDGES}


def property_index(labels) -> dict[str, Property]:
    """Property name -> Property over `labels`; ValueError when one name has two types."""
    found: dict[str, Property] = {}
    for label in labels:
        for p in label.properties:
            if found.setdefault(p.name, p).type != p.type:
                raise ValueError(f"property {p.name}: typed {found[p.name].type} and {p.type} (one name, one type)")
    return found


#: property name -> the Property (its type is the same on every label), over every label
PROPERTIES: dict[str, Property] = property_index((*VERTICES, *EDGES))
#: property name -> Neptune type
PROPERTY_TYPES: dict[str, str] = {n: p.type for n, p in PROPERTIES.items()}

#: the cardinality of every vertex property column. Neptune's loader gives a vertex property `set` cardinality unless
#: its column says otherwise: a nightly loading a changed value (a match's `records`) would add it beside the old one;
#: `(single)` with the loader's updateSingleCardinalityProperties replaces it. Edge properties are single in Neptune
#: and a cardinality on their columns is an error.
VERTEX_CARDINALITY = "(single)"


def csv_column(name: str, edges: bool) -> str:
    """A property's Neptune bulk-load CSV column: `name:Type` on edges, `name:Type(single)` on vertices (KeyError for
    an undeclared name)."""
    return PROPERTIES[name].column + ("" if edges else VERTEX_CARDINALITY)


def label_of(kind: str, name: str) -> VertexLabel | EdgeLabel:
    """The label `name` of `kind` ("vertex" / "vertices" or "edge" / "edges"); KeyError when undeclared."""
    edge = kind.startswith("edge")
    try:
        return (EDGE_LABELS if edge else VERTEX_LABELS)[name]
    except KeyError:
        raise KeyError(f"no {'edge' if edge else 'vertex'} label {name!r} in graph.schema") from None


def props_of(kind: str, name: str) -> tuple[str, ...]:
    """The property names of label `name` of `kind` (as graph.neptune_parts' `props_of` takes them)."""
    return label_of(kind, name).names


def check_properties(kind: str, name: str, props) -> None:
    """ValueError when `props` (names) holds one that label `name` of `kind` does not declare."""
    label = label_of(kind, name)
    unknown = sorted(set(props).difference(label.name_set))
    if unknown:
        raise ValueError(f"{label.name}: no property {', '.join(unknown)} declared in graph.schema")
