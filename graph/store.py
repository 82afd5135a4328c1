"""The GraphStore interface (customer-360 queries) and `open_store(spec)`.

Two implementations answer identically: graph.networkx_store.NetworkxStore (embedded, a file) and
graph.gremlin_store.GremlinStore (TinkerPop Gremlin Server or Amazon Neptune). Both fetch plain element
dicts ({"id", "label", **properties}) and shape the answer with the helpers below, so sort order and
field sets are the same by construction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from c360.errors import C360Error, InputError

CUSTOMER_FIELDS = ("source", "first_name", "last_name", "date_of_birth", "ssn", "home_phone", "company")
ADDRESS_FIELDS = ("address", "city", "state", "zip")
VEHICLE_FIELDS = ("vin", "make", "model", "year")
MAX_DEPTH = 3


class GraphUnavailable(C360Error):
    """The graph store cannot be reached (server down, file missing)."""


class GraphStore(ABC):
    """Customer-360 questions over the property graph (see DESIGN.md, Graph)."""

    @abstractmethod
    def customer360(self, match_id: str) -> dict | None:
        """The match with all its source records, their addresses, policies, vehicles; None when unknown."""

    @abstractmethod
    def search(self, last_name: str, first_name: str | None = None, date_of_birth: str | None = None) -> list[dict]:
        """Matches whose records have this last name (and first name / date of birth), case-insensitive names."""

    @abstractmethod
    def visitor(self, user_id: str) -> dict | None:
        """A visitor's visits (photos) and recommendations; None when unknown."""

    @abstractmethod
    def neighbourhood(self, vertex_id: str, depth: int = 1) -> dict:
        """Vertices within `depth` hops (either direction) and the edges among them."""

    @abstractmethod
    def vertex_ids(self, label: str) -> list[str]:
        """Sorted ids of all vertices with this label."""

    @abstractmethod
    def counts(self) -> dict:
        """{"vertices": {label: n}, "edges": {label: n}}."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the store answers."""

    def close(self) -> None:
        """Release connections (nothing to do for the embedded store)."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_store(spec: str, current_dir: Path | None = None) -> GraphStore:
    """Open "networkx" (current_dir/graph/graph.nx), "networkx:PATH", "gremlin://host:port" or "wss://host:port"."""
    spec = (spec or "networkx").strip()
    if spec == "networkx" or spec.startswith("networkx:"):
        from c360.graph.networkx_store import NetworkxStore

        if spec == "networkx":
            if current_dir is None:
                raise InputError("graph store 'networkx' needs a current run directory (or use networkx:PATH)")
            path = Path(current_dir) / "graph" / "graph.nx"
        else:
            path = Path(spec.split(":", 1)[1])
        return NetworkxStore.open(path)
    if spec.startswith(("gremlin://", "ws://", "wss://")):
        from c360.graph.gremlin_store import GremlinStore

        return GremlinStore(spec)
    raise InputError(f"graph store {spec!r}: expected networkx, networkx:PATH, gremlin://HOST:PORT or wss://HOST:PORT")


# ---- answer shaping shared by both stores -------------------------------------------------------------

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
                "id": p["p"]["id"], "line": p["p"].get("line"),
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
        return sum(not r["c"].get(f) for f in ("first_name", "last_name", "date_of_birth")), r["c"]["id"]

    for r in sorted(rows, key=completeness):
        best.setdefault(r["match_id"], r)
    out = [{"match_id": m, "first_name": r["c"].get("first_name"), "last_name": r["c"].get("last_name"),
            "date_of_birth": r["c"].get("date_of_birth"), "records": int(r["records"])} for m, r in best.items()]
    return sorted(out, key=lambda x: ((x["last_name"] or "").lower(), (x["first_name"] or "").lower(),
                                      x["date_of_birth"] or "", len(x["match_id"]), x["match_id"]))


def shape_visitor(user_id: str, visits: list[tuple[dict, dict]], recs: list[tuple[dict, dict]]) -> dict:
    """visits / recs: [(edge properties, attraction)]."""
    v = [{"item_id": a["id"], "name": a.get("name"), "photos": e.get("photos")} for e, a in visits]
    r = [{"item_id": a["id"], "name": a.get("name"), "score": e.get("score"), "rank": e.get("rank"),
          "model": e.get("model")} for e, a in recs]
    return {"user_id": user_id,
            "visits": sorted(v, key=lambda x: (-(x["photos"] or 0), x["item_id"])),
            "recommendations": sorted(r, key=lambda x: (x["model"] or "", x["rank"] or 0, x["item_id"]))}


def shape_neighbourhood(vertices: list[dict], edges: list[dict]) -> dict:
    return {"vertices": sorted(vertices, key=lambda v: v["id"]), "edges": sorted(edges, key=lambda e: e["id"])}


def check_depth(depth: int) -> int:
    if not isinstance(depth, int) or depth < 0 or depth > MAX_DEPTH:
        raise InputError(f"depth: must be an integer from 0 to {MAX_DEPTH} (got {depth!r})")
    return depth


def normalise_search(last_name: str, first_name: str | None, date_of_birth: str | None) -> tuple:
    if not last_name or not str(last_name).strip():
        raise InputError("last_name: must not be empty")
    fn = first_name.strip().lower() if first_name and first_name.strip() else None
    dob = date_of_birth.strip() if date_of_birth and date_of_birth.strip() else None
    return str(last_name).strip().lower(), fn, dob
