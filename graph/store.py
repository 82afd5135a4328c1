"""The GraphStore interface (customer-360 queries, writes), store specs (`StoreSpec`) and `open_store(spec)`.

Backends live in their own modules and are found through graph.backends by the spec's scheme; this module
imports none of them. GraphStore's public queries are concrete: they check the input, call one raw query a
backend implements (plain element dicts, {"id", "label", **properties}) and shape the answer with the helpers
below, so sort order and field sets are the same on every backend by construction.
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from c360.errors import C360Error, InputError
from c360.graph import backends
from c360.graph.schema import ADDRESS, CUSTOMER, POLICY, RECOMMENDED, VEHICLE, VISITED, VISITOR
from c360.layout import RunLayout

if TYPE_CHECKING:
    from c360.graph.neptune_csv import Element
    from c360.settings import Settings

# the properties an answer shows (api.schemas' response models; each checked against graph.schema at import)
CUSTOMER_FIELDS = CUSTOMER.fields("source", "first_name", "last_name", "date_of_birth", "ssn", "home_phone", "company")
ADDRESS_FIELDS = ADDRESS.fields("address", "city", "state", "zip")
VEHICLE_FIELDS = VEHICLE.fields("vin", "make", "model", "year")
POLICY_FIELDS = POLICY.fields("line")
SEARCH_FIELDS = CUSTOMER.fields("first_name", "last_name", "date_of_birth")
VISIT_FIELDS = VISITED.fields("photos")
RECOMMENDATION_FIELDS = RECOMMENDED.fields("score", "rank", "model")
#: the customer properties a search matches: last name, first name (both lower-cased), date of birth
SEARCH_KEYS = CUSTOMER.fields("last_name_lc", "first_name_lc", "date_of_birth")
MAX_DEPTH = 3
DEFAULT_SPEC = "networkx"
DEFAULT_BATCH = 1000
DEFAULT_WORKERS = 4

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")


class GraphUnavailable(C360Error):
    """The graph store cannot be reached (server down, file missing)."""


# ---- store specs -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoreSpec:
    """A parsed store spec: NAME (the run's embedded file), NAME:PATH (a file) or SCHEME://HOST[:PORT][/PATH].

    `scheme` names the backend in graph.backends; exactly one of `path` (file forms) or `host` (URL forms) is
    set, except for a bare NAME, which `resolve(current_dir)` points at the run's embedded graph file."""

    text: str
    scheme: str
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    url_path: str = ""

    def __str__(self) -> str:
        return self.text

    @property
    def is_url(self) -> bool:
        """True for SCHEME://HOST forms (a server), False for NAME / NAME:PATH forms (a file)."""
        return self.host is not None

    @property
    def url(self) -> str | None:
        """SCHEME://HOST[:PORT][/PATH] as parsed (None for file forms)."""
        if self.host is None:
            return None
        return f"{self.scheme}://{self.host}{f':{self.port}' if self.port else ''}{self.url_path}"

    def resolve(self, current_dir: str | Path | None) -> StoreSpec:
        """A bare NAME becomes NAME:<current_dir>/graph/graph.json (RunLayout.embedded_graph); others unchanged."""
        if self.is_url or self.path is not None:
            return self
        if current_dir is None:
            raise InputError(f"graph store {self.text!r} needs a current run directory (or use {self.scheme}:PATH)")
        path = RunLayout(Path(current_dir)).embedded_graph
        return replace(self, text=f"{self.scheme}:{path}", path=path)


def parse_spec(spec: str | StoreSpec | None, what: str = "graph store") -> StoreSpec:
    """Parse a store spec (empty: "networkx"); InputError naming `what` and the spec when it is malformed or
    names no registered backend."""
    if isinstance(spec, StoreSpec):
        return spec
    text = (spec or DEFAULT_SPEC).strip()
    if "://" in text:
        u = urlparse(text)
        try:
            port = u.port
        except ValueError:
            raise InputError(f"{what} {text!r}: the port must be a number from 0 to 65535") from None
        if not u.hostname:
            raise InputError(f"{what} {text!r}: expected {u.scheme or 'SCHEME'}://HOST[:PORT][/PATH]")
        parsed = StoreSpec(text, u.scheme, host=u.hostname, port=port,
                           url_path=u.path if u.path not in ("", "/") else "")
    else:
        scheme, sep, rest = text.partition(":")
        if sep and not rest.strip():
            raise InputError(f"{what} {text!r}: expected {scheme}:PATH with a path")
        parsed = StoreSpec(text, scheme, path=Path(rest.strip()) if sep else None)
    if not _SCHEME.match(parsed.scheme) or not backends.is_registered(parsed.scheme):
        raise InputError(f"{what} {text!r}: expected {backends.usage()}")
    return parsed


def open_store(spec: str | StoreSpec | None, current_dir: Path | None = None, *, settings: Settings | None = None,
               create: bool = False) -> GraphStore:
    """Open the store `spec` names: "networkx" (current_dir/graph/graph.json), "networkx:PATH",
    "gremlin://host:port", "wss://host:port" or any scheme registered in graph.backends.

    `settings` (default: c360.settings.load_settings() when a backend needs them) carries e.g. Gremlin headers;
    `create` opens a file store that does not exist yet (for writing)."""
    parsed = parse_spec(spec)
    return backends.backend_for(parsed).from_spec(parsed, current_dir=current_dir, settings=settings, create=create)


# ---- the interface ---------------------------------------------------------------------------------------

class GraphStore(ABC):
    """Customer-360 questions and writes over the property graph.

    Subclasses implement the raw queries (`_customer360_rows`, `_search_rows`, `_visitor_rows`,
    `_neighbourhood_rows`, `_vertex_ids`, `_label_counts`) and the writes (`upsert`, `drop_all`); the public
    queries here check input and shape the answers, identically for every backend."""

    @classmethod
    def from_spec(cls, spec: StoreSpec, *, current_dir: Path | None = None, settings: Settings | None = None,
                  create: bool = False) -> GraphStore:
        """Open the store a parsed spec names (backends that take no arguments can keep this default)."""
        return cls()

    # ---- queries ------------------------------------------------------------------------------------
    def customer360(self, match_id: str) -> dict | None:
        """The match with all its source records, their addresses, policies, vehicles; None when unknown."""
        mid = str(match_id)
        rows = self._customer360_rows(mid)
        return None if rows is None else shape_customer360(mid, rows)

    def search(self, last_name: str, first_name: str | None = None, date_of_birth: str | None = None) -> list[dict]:
        """Matches whose records have this last name (and first name / date of birth), case-insensitive names."""
        return shape_search(self._search_rows(*normalise_search(last_name, first_name, date_of_birth)))

    def visitor(self, user_id: str) -> dict | None:
        """A visitor's visits (photos) and recommendations; None when unknown."""
        found = self._visitor_rows(VISITOR.vertex_id(user_id))
        return None if found is None else shape_visitor(str(user_id), *found)

    def neighbourhood(self, vertex_id: str, depth: int = 1) -> dict:
        """Vertices within `depth` hops (either direction) and the edges among them."""
        return shape_neighbourhood(*self._neighbourhood_rows(vertex_id, check_depth(depth)))

    def vertex_ids(self, label: str) -> list[str]:
        """Sorted ids of all vertices with this label."""
        return sorted(self._vertex_ids(label))

    def counts(self) -> dict:
        """{"vertices": {label: n}, "edges": {label: n}}, labels sorted."""
        vertices, edges = self._label_counts()
        return {"vertices": dict(sorted(vertices.items())), "edges": dict(sorted(edges.items()))}

    def ping(self) -> bool:
        """True when the store answers (embedded stores always do; remote ones override)."""
        return True

    # ---- raw queries: what a backend implements -----------------------------------------------------
    @abstractmethod
    def _customer360_rows(self, match_id: str) -> list[dict] | None:
        """None when `match_id` is no match vertex; else one row per customer joined to it by SameAs:
        {"c": customer, "addresses": [address], "policies": [{"p": policy, "addresses": [...], "vehicles": [...]}]}
        (each list without duplicates)."""

    @abstractmethod
    def _search_rows(self, last_name_lc: str, first_name_lc: str | None, date_of_birth: str | None) -> list[dict]:
        """[{"c": customer, "match_id": str, "records": int}] for each customer with last_name_lc (and the given
        first_name_lc / date_of_birth) and each match it is SameAs; records = customers SameAs that match."""

    @abstractmethod
    def _visitor_rows(self, vertex_id: str) -> tuple[list[tuple[dict, dict]], list[tuple[dict, dict]]] | None:
        """None when `vertex_id` is no visitor vertex; else (visited, recommended) out-edges as
        [(edge properties without label, attraction)]."""

    @abstractmethod
    def _neighbourhood_rows(self, vertex_id: str, depth: int) -> tuple[list[dict], list[dict]]:
        """(vertices within `depth` hops either way, edges among them as {"id", "label", "from", "to", ...});
        ([], []) when the vertex does not exist."""

    @abstractmethod
    def _vertex_ids(self, label: str) -> list[str]:
        """Ids of the vertices with this label, any order."""

    @abstractmethod
    def _label_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """({vertex label: n}, {edge label: n}), any order."""

    # ---- writes -------------------------------------------------------------------------------------
    @abstractmethod
    def upsert(self, vertices: list[Element], edges: list[Element], *, batch_size: int = DEFAULT_BATCH,
               workers: int = DEFAULT_WORKERS, progress: bool | None = None) -> None:
        """Insert or update vertices (by id), then edges (by id); writing the same elements twice changes nothing.

        batch_size / workers / progress are hints for backends that write in batches (others ignore them).
        Raises ValueError when an edge names a vertex that does not exist, where the backend checks that."""

    @abstractmethod
    def drop_all(self) -> None:
        """Remove every vertex and edge."""

    def upsert_live(self, vertices: list[Element], edges: list[Element]) -> None:
        """A few elements written while serving (a customer record committed in real time): upserted like any
        write; the embedded store keeps them in memory only, since its file is the published run's."""
        self.upsert(vertices, edges, batch_size=max(1, len(vertices), len(edges)), workers=1, progress=False)

    #: True when a bulk() block that fails leaves the store as it was (a load then needs no endpoint check first)
    atomic_bulk = False

    @contextlib.contextmanager
    def bulk(self):
        """A load made of many upserts: a backend may defer work to the end of the block (the embedded store saves
        its file once, and not at all when the block fails). Nothing to defer by default."""
        yield self

    # ---- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Release connections (nothing to do for embedded stores)."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- answer shaping, done once for every backend ---------------------------------------------------------

def _pick(el: dict, fields: tuple[str, ...]) -> dict:
    return {"id": el["id"], **{f: el.get(f) for f in fields}}


def shape_customer360(match_id: str, rows: list[dict]) -> dict:
    """rows: [{"c": customer, "addresses": [address], "policies": [{"p": policy, "addresses", "vehicles"}]}]."""
    customers = []
    for r in rows:
        c = _pick(r["c"], CUSTOMER_FIELDS)
        c["addresses"] = sorted((_pick(a, ADDRESS_FIELDS) for a in r["addresses"]), key=lambda a: a["id"])
        policies = []
        for p in r["policies"]:
            policies.append({
                **_pick(p["p"], POLICY_FIELDS),
                "addresses": sorted((_pick(a, ADDRESS_FIELDS) for a in p["addresses"]), key=lambda a: a["id"]),
                "vehicles": sorted((_pick(v, VEHICLE_FIELDS) for v in p["vehicles"]), key=lambda v: v["id"]),
            })
        c["policies"] = sorted(policies, key=lambda p: p["id"])
        customers.append(c)
    return {"match_id": str(match_id), "customers": sorted(customers, key=lambda c: c["id"])}


def shape_search(rows: list[dict]) -> list[dict]:
    """rows: [{"c": matching customer, "match_id": str, "records": int}] → one entry per match."""
    best: dict[str, dict] = {}

    def completeness(r: dict) -> tuple:  # per match, the matching record with most of name and birth date filled
        return sum(not r["c"].get(f) for f in SEARCH_FIELDS), r["c"]["id"]

    for r in sorted(rows, key=completeness):
        best.setdefault(r["match_id"], r)
    out = [{"match_id": m, **{f: r["c"].get(f) for f in SEARCH_FIELDS}, "records": int(r["records"])}
           for m, r in best.items()]
    return sorted(out, key=lambda x: ((x["last_name"] or "").lower(), (x["first_name"] or "").lower(),
                                      x["date_of_birth"] or "", len(x["match_id"]), x["match_id"]))


def shape_visitor(user_id: str, visits: list[tuple[dict, dict]], recs: list[tuple[dict, dict]]) -> dict:
    """visits / recs: [(edge properties, attraction)]."""
    v = [{"item_id": a["id"], "name": a.get("name"), **{f: e.get(f) for f in VISIT_FIELDS}} for e, a in visits]
    r = [{"item_id": a["id"], "name": a.get("name"), **{f: e.get(f) for f in RECOMMENDATION_FIELDS}}
         for e, a in recs]
    return {"user_id": user_id,
            "visits": sorted(v, key=lambda x: (-(x["photos"] or 0), x["item_id"])),
            "recommendations": sorted(r, key=lambda x: (x["model"] or "", x["rank"] or 0, x["item_id"]))}


def shape_neighbourhood(vertices: list[dict], edges: list[dict]) -> dict:
    """Vertices and edges sorted by id."""
    return {"vertices": sorted(vertices, key=lambda v: v["id"]), "edges": sorted(edges, key=lambda e: e["id"])}


def check_depth(depth: int) -> int:
    """`depth` when it is an integer from 0 to MAX_DEPTH, else InputError."""
    if not isinstance(depth, int) or depth < 0 or depth > MAX_DEPTH:
        raise InputError(f"depth: must be an integer from 0 to {MAX_DEPTH} (got {depth!r})")
    return depth


def normalise_search(last_name: str, first_name: str | None, date_of_birth: str | None) -> tuple:
    """(last name lower-cased, first name lower-cased or None, date of birth or None); InputError on no last name."""
    if not last_name or not str(last_name).strip():
        raise InputError("last_name: must not be empty")
    fn = first_name.strip().lower() if first_name and first_name.strip() else None
    dob = date_of_birth.strip() if date_of_birth and date_of_birth.strip() else None
    return str(last_name).strip().lower(), fn, dob
