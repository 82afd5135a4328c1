"""The GraphStore interface (customer-360 queries, writes), store specs (`StoreSpec`) and `open_store(spec)`.

Backends live in their own modules and are found through graph.backends by the spec's scheme; this module
imports none of them. GraphStore's public queries are concrete: they check the input, call one raw query a
backend implements (plain element dicts, {"id", "label", **properties}) and shape the answer with the helpers
below, so sort order and field sets are the same on every backend by construction.
"""

from __future__ import annotations

import contextlib
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from c360.errors import C360Error, InputError
from c360.graph import backends
from c360.graph.schema import (
    ADDRESS,
    ATTRACTION,
    CUSTOMER,
    POLICY,
    RECOMMENDED,
    SAME_AS,
    VEHICLE,
    VISITED,
    VISITOR,
    parse_park_trips,
)
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
VISIT_FIELDS = VISITED.fields("photos", "trips", "last_visit")
RECOMMENDATION_FIELDS = RECOMMENDED.fields("score", "rank", "model")
#: a customer 360's park accounts: the visitor's user_id and these (api.schemas.Account)
ACCOUNT_FIELDS = VISITOR.fields("first_name", "last_name", "date_of_birth", "home_phone", "email", "zip")
ACCOUNT_KEY = VISITOR.fields("user_id")[0]
PARK_TRIPS = VISITOR.fields("park_trips")[0]
ATTRACTION_PARK = ATTRACTION.fields("park")[0]
#: a person's recommendations in a customer 360 (GET /customers/{match_id}/recommendations: up to MAX_RECOMMENDATIONS)
TOP_RECOMMENDATIONS = 10
MAX_RECOMMENDATIONS = 100
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
        """The match with all its source records, their addresses, policies, vehicles, and its park accounts: each
        account, a visit summary per park, the accounts' recommendations merged (top TOP_RECOMMENDATIONS); None when
        unknown."""
        mid = str(match_id)
        rows = self._customer360_rows(mid)
        return None if rows is None else shape_customer360(mid, rows["customers"], rows["accounts"])

    def recommendations(self, match_id: str, k: int = TOP_RECOMMENDATIONS) -> dict | None:
        """{"match_id", "items"}: the recommendations of the person's park accounts merged (as in customer360), the
        top `k`; None when the match is unknown."""
        mid = str(match_id)
        k = check_k(k)
        rows = self._accounts_rows(mid)
        return None if rows is None else {"match_id": mid, "items": shape_person_recommendations(rows, k)}

    def search(self, last_name: str, first_name: str | None = None, date_of_birth: str | None = None) -> list[dict]:
        """Matches whose records have this last name (and first name / date of birth), case-insensitive names."""
        return shape_search(self._search_rows(*normalise_search(last_name, first_name, date_of_birth)))

    def visitor(self, user_id: str) -> dict | None:
        """A visitor's visits (photos, trips, last visit) and recommendations, and the match of the person when the
        visitor is an account; None when unknown."""
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
    def _customer360_rows(self, match_id: str) -> dict | None:
        """None when `match_id` is no match vertex; else {"customers": one row per customer joined to it by SameAs,
        "accounts": `_accounts_rows`' rows}: a customer row is {"c": customer, "addresses": [address],
        "policies": [{"p": policy, "addresses": [...], "vehicles": [...]}]} (each list without duplicates)."""

    def _accounts_rows(self, match_id: str) -> list[dict] | None:
        """None when `match_id` is no match vertex; else one row per visitor joined to it by SameAs (a park
        account): {"v": visitor, "visits": [(visited edge properties, attraction)], "recs": [(recommended edge
        properties, attraction)]}. By default `_customer360_rows`' accounts; a backend may ask for them alone."""
        rows = self._customer360_rows(match_id)
        return None if rows is None else rows["accounts"]

    @abstractmethod
    def _search_rows(self, last_name_lc: str, first_name_lc: str | None, date_of_birth: str | None) -> list[dict]:
        """[{"c": customer, "match_id": str, "records": int}] for each customer with last_name_lc (and the given
        first_name_lc / date_of_birth) and each match it is SameAs; records = customers SameAs that match."""

    @abstractmethod
    def _visitor_rows(self, vertex_id: str) -> tuple[list[tuple[dict, dict]], list[tuple[dict, dict]], list[str]] | None:
        """None when `vertex_id` is no visitor vertex; else (visited, recommended) out-edges as
        [(edge properties without label, attraction)], and the ids of the matches it is SameAs (an account's)."""

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

    def relink(self, record_vertices: list[str], match: Element, counts: list[Element] = ()) -> None:
        """Move record vertices (customers, visitors) to another match while serving (a steward's decision): their
        SameAs edges now end at `match` (upserted: a new match vertex for a split-off part); `counts` updates the
        records/accounts of the matches touched. In memory only for the embedded store, like upsert_live."""
        from c360.graph.neptune_csv import Element

        self._drop_same_as(record_vertices)
        edges = [Element(SAME_AS.edge_id(v, match.id), SAME_AS.name, {}, frm=v, to=match.id) for v in record_vertices]
        self.upsert_live([match, *counts], edges)

    @abstractmethod
    def _drop_same_as(self, record_vertices: list[str]) -> None:
        """Remove the SameAs edges leaving these vertices (the ones that exist; an unknown vertex is no error)."""

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


def shape_customer360(match_id: str, rows: list[dict], accounts: list[dict] | None = None) -> dict:
    """rows: [{"c": customer, "addresses": [address], "policies": [{"p": policy, "addresses", "vehicles"}]}];
    accounts: [{"v": visitor, "visits": [(edge, attraction)], "recs": [(edge, attraction)]}]."""
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
    accounts = accounts or []
    return {"match_id": str(match_id), "customers": sorted(customers, key=lambda c: c["id"]),
            "accounts": shape_accounts(accounts), "visits": shape_park_visits(accounts),
            "recommendations": shape_person_recommendations(accounts, TOP_RECOMMENDATIONS)}


def _user_id(v: dict) -> str:
    return v.get(ACCOUNT_KEY) or str(v["id"]).removeprefix(VISITOR.id_prefix)


def shape_accounts(accounts: list[dict]) -> list[dict]:
    """Each account: its user_id and ACCOUNT_FIELDS, by user_id."""
    out = [{"user_id": _user_id(a["v"]), **{f: a["v"].get(f) for f in ACCOUNT_FIELDS}} for a in accounts]
    return sorted(out, key=lambda a: a["user_id"])


def shape_park_visits(accounts: list[dict]) -> list[dict]:
    """A summary per park over every account's visited edges: trips (the accounts' `park_trips` summed: a trip is
    one account's, so the sum is exact; None when no account has them, i.e. the graph was exported without trips),
    distinct attractions, photos, latest visit. Most trips first, then most photos, then by park."""
    parks: dict = {}
    known = False

    def of(park):
        return parks.setdefault(park, {"park": park, "trips": 0, "attractions": set(), "photos": 0, "last_visit": None})

    for a in accounts:
        text = a["v"].get(PARK_TRIPS)
        known |= text is not None
        for park, n in parse_park_trips(text).items():
            of(park)["trips"] += n
        for e, attraction in a["visits"]:
            s = of(attraction.get(ATTRACTION_PARK))
            s["attractions"].add(attraction["id"])
            s["photos"] += int(e.get("photos") or 0)
            last = e.get("last_visit")
            if last is not None and (s["last_visit"] is None or last > s["last_visit"]):
                s["last_visit"] = int(last)
    out = [{**s, "trips": s["trips"] if known else None, "attractions": len(s["attractions"])} for s in parks.values()]
    return sorted(out, key=lambda s: (-(s["trips"] or 0), -s["photos"], s["park"] is None, s["park"] or ""))


def shape_person_recommendations(accounts: list[dict], k: int) -> list[dict]:
    """The accounts' recommended edges merged: each attraction once with its best score, never one the person
    visited under any account, by score (then item id), ranked from 1, the top `k`."""
    visited = {attraction["id"] for a in accounts for _, attraction in a["visits"]}
    best: dict[str, dict] = {}
    for a in accounts:
        for e, attraction in a["recs"]:
            score = e.get("score")
            if attraction["id"] in visited or score is None or not math.isfinite(score):
                continue
            have = best.get(attraction["id"])
            if have is None or score > have["score"]:
                best[attraction["id"]] = {"item_id": attraction["id"], "name": attraction.get("name"),
                                          "score": float(score)}
    ranked = sorted(best.values(), key=lambda x: (-x["score"], x["item_id"]))[:k]
    return [{**x, "rank": i} for i, x in enumerate(ranked, start=1)]


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


def shape_visitor(user_id: str, visits: list[tuple[dict, dict]], recs: list[tuple[dict, dict]],
                  match_ids: list[str] | None = None) -> dict:
    """visits / recs: [(edge properties, attraction)]; match_ids: the matches the visitor is SameAs (the lowest
    is shown: an account is one person)."""
    v = [{"item_id": a["id"], "name": a.get("name"), **{f: e.get(f) for f in VISIT_FIELDS}} for e, a in visits]
    r = [{"item_id": a["id"], "name": a.get("name"), **{f: e.get(f) for f in RECOMMENDATION_FIELDS}}
         for e, a in recs]
    matches = sorted({str(m) for m in match_ids or ()}, key=lambda m: (len(m), m))
    return {"user_id": user_id, "match_id": matches[0] if matches else None,
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


def check_k(k: int) -> int:
    """`k` when it is an integer from 1 to MAX_RECOMMENDATIONS, else InputError."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > MAX_RECOMMENDATIONS:
        raise InputError(f"k: must be an integer from 1 to {MAX_RECOMMENDATIONS} (got {k!r})")
    return k


def normalise_search(last_name: str, first_name: str | None, date_of_birth: str | None) -> tuple:
    """(last name lower-cased, first name lower-cased or None, date of birth or None); InputError on no last name."""
    if not last_name or not str(last_name).strip():
        raise InputError("last_name: must not be empty")
    fn = first_name.strip().lower() if first_name and first_name.strip() else None
    dob = date_of_birth.strip() if date_of_birth and date_of_birth.strip() else None
    return str(last_name).strip().lower(), fn, dob
