"""The customer-360 property graph from the pipeline's tables: `export_graph` computes it with Spark
(graph.spark_graph) and writes Neptune bulk-load CSV parts per label (graph.neptune_parts); `GraphBuilder` /
`build_graph` compute the same elements record by record in Python: the reference the Spark export is tested
against, and what one customer record committed in real time adds (`record_elements`).

Inputs (all optional, the graph holds what exists):
- matched: merged insurance rows + match_id (id, first_name, last_name, company, date_of_birth, home_phone,
  ssn, source, address, city, state, zip, match_id, optional email) → customer and match vertices, SameAs,
  locatedAt. Rows whose source is `park` (graph.schema.ACCOUNT_SOURCE) are theme-park app accounts, their id the
  USER_ID of the visits: no customer, the visitor `visitor:<id>` with the account's first_name, last_name,
  date_of_birth, home_phone, email, zip, SameAs the match. A match counts its customers (`records`) and its
  accounts (`accounts`) and shows the name of its lowest customer id, else of its lowest account id. When the
  match output has its id changes beside it (`<matched>.id_changes.parquet`: the match ran against a previous
  output), a match that absorbed previous ids lists them in `merged_from`, and an id created for records split off
  previous ids lists those in `split_from` (graph.schema.format_match_ids).
- sources: directory of the five insurance source tables → policies (covers), vehicles (covers), policy
  addresses (locatedAt); without `matched`, customers are taken from the sources directly (no SameAs).
- visits (sigir17 directory) or interactions (USER_ID, ITEM_ID[, EVENT_VALUE]) → visitors, visited(photos).
- items (ITEM_ID, NAME, PARK, THEME) → attractions; default: the sigir17 POI lists when visits/recs exist.
- recs (USER_ID, ITEM_ID, RANK, SCORE) + model name → recommended(score, rank, model).
- trips: visit rows USER_ID, ITEM_ID, SESSION_ID, TIMESTAMP (epoch seconds)[, PARK] (the run's
  recsys/trips.parquet has them: graph.export reads no other column) → on the visited edges that exist, `trips`
  (distinct SESSION_IDs of the pair) and `last_visit` (latest TIMESTAMP); on the visitors that exist,
  `park_trips` (distinct SESSION_IDs per park, graph.schema.format_park_trips). A row's park: its PARK, else its
  attraction's park, else the `park` of an item id `park:poi`. A trip is one user's rows of one SESSION_ID.
  Without trips those properties are absent.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from c360.entity_resolution import sources as S
from c360.errors import InputError
from c360.graph.neptune_csv import EXACT, Element, check_values
from c360.graph.schema import (
    ACCOUNT_RECORD_PROPS,
    ACCOUNT_SOURCE,
    ADDRESS,
    ATTRACTION,
    COVERS,
    CUSTOMER,
    CUSTOMER_RECORD_PROPS,
    LOCATED_AT,
    MATCH,
    POLICY,
    RECOMMENDED,
    SAME_AS,
    VEHICLE,
    VISITED,
    VISITOR,
    EdgeLabel,
    VertexLabel,
    check_properties,
    format_match_ids,
    format_park_trips,
    props_of,
)
from c360.io import read_table, require_columns
from c360.layout import MatchOutput

# merged columns a customer vertex needs (from `matched`, or from a source customer table under its own names)
PERSON_COLUMNS = ["id", "first_name", "last_name", "date_of_birth"]
MATCHED_COLUMNS = [*PERSON_COLUMNS, "source", "match_id"]
# the trips table's columns the export reads (PARK too, when it has one)
TRIPS_COLUMNS = ["USER_ID", "ITEM_ID", "SESSION_ID", "TIMESTAMP"]


def _s(v) -> str | None:
    """A clean string or None for missing/blank values."""
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return None
    s = str(v).strip()
    return s or None


def address_id(street, city, state, zip_) -> str:
    """`address:<12 hex of sha1 of normalized "street|city|state|zip">` — shared addresses give one vertex."""
    norm = "|".join(re.sub(r"\s+", " ", (_s(x) or "").lower()) for x in (street, city, state, zip_))
    return ADDRESS.vertex_id(hashlib.sha1(norm.encode("utf-8")).hexdigest()[:12])


@dataclass
class GraphBuilder:
    """Collects vertices and edges by id (later duplicates merge their properties); a property the label does not
    declare in graph.schema is refused (ValueError)."""

    def __post_init__(self):
        self.vertices: dict[str, Element] = {}
        self.edges: dict[str, Element] = {}

    def vertex(self, vid: str, label: VertexLabel, **props) -> str:
        check_properties("vertex", label.name, props)
        clean = {k: v for k, v in props.items() if v is not None}
        if vid in self.vertices:
            self.vertices[vid].props.update(clean)
        else:
            self.vertices[vid] = Element(vid, label.name, clean)
        return vid

    def edge(self, label: EdgeLabel, frm: str, to: str, eid: str | None = None, **props) -> str:
        check_properties("edge", label.name, props)
        eid = eid or label.edge_id(frm, to)
        self.edges[eid] = Element(eid, label.name, {k: v for k, v in props.items() if v is not None}, frm=frm, to=to)
        return eid

    def address(self, street, city, state, zip_) -> str | None:
        if not _s(street):
            return None
        aid = address_id(street, city, state, zip_)
        name = ", ".join(x for x in (_s(street), _s(city), _s(state), _s(zip_)) if x)
        return self.vertex(aid, ADDRESS, name=name, address=_s(street), city=_s(city), state=_s(state), zip=_s(zip_))


def _read_str(path: Path) -> pd.DataFrame:
    return read_table(path, dtype=str, keep_default_na=False) if str(path).lower().endswith((".csv", ".csv.gz")) \
        else read_table(path).astype("string")


def load_sources(sources_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The source tables (`sources.SOURCE_TABLES`) present in DIR (missing ones are simply absent), all columns
    as strings, keyed by table name."""
    d = Path(sources_dir)
    if not d.is_dir():
        raise InputError(f"{d}: --sources directory not found")
    return {t.name: _read_str(d / t.file) for t in S.SOURCE_TABLES if (d / t.file).exists()}


def customers_from_sources(src: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Merge the source customer tables as the merge job does (the same declared renames, drops, ids and address
    join), without match ids."""
    frames = []
    for t in S.CUSTOMER_TABLES:
        if t.name in src:
            require_columns(src[t.name], t.source_names(PERSON_COLUMNS), t.file)
            frames.append(S.to_merged_pandas(t, src[t.name], src.get(t.address.name)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _full_name(row: dict) -> str | None:
    return " ".join(x for x in (_s(row.get("first_name")), _s(row.get("last_name"))) if x) or None


def _match_key(m) -> str:
    return str(int(m))


def is_account(row: dict) -> bool:
    """True for a matched row of a theme-park app account (source `park`)."""
    return _s(row.get("source")) == ACCOUNT_SOURCE


def add_customers(b: GraphBuilder, customers: pd.DataFrame, with_matches: bool,
                  accounts: pd.DataFrame | None = None) -> None:
    """customer vertices (+ match vertices and SameAs when match_id is present) and customer→address; the match
    vertices count `accounts` too (their visitors are added by add_accounts)."""
    if with_matches:
        add_matches(b, customers, accounts)
    for row in customers.to_dict("records"):
        cid = _s(row["id"])
        if cid is None:
            raise InputError("matched: a row has an empty id")
        props = {k: _s(row.get(k)) for k in CUSTOMER_RECORD_PROPS}
        first, last = props["first_name"], props["last_name"]
        b.vertex(cid, CUSTOMER, name=" ".join(x for x in (first, last) if x) or cid,
                 first_name_lc=first.lower() if first else None, last_name_lc=last.lower() if last else None, **props)
        if with_matches:
            b.edge(SAME_AS, cid, _match_key(row["match_id"]))
        aid = b.address(row.get("address"), row.get("city"), row.get("state"), row.get("zip"))
        if aid:
            b.edge(LOCATED_AT, cid, aid)


def add_matches(b: GraphBuilder, customers: pd.DataFrame, accounts: pd.DataFrame | None) -> None:
    """A match vertex per match_id: `records` (its customers), `accounts` (its park accounts) and the name of its
    lowest customer id, else of its lowest account id (the match id when that has no name)."""
    members: dict[str, list] = {}
    for kind, df in ((0, customers), (1, accounts)):
        for row in ([] if df is None else df.to_dict("records")):
            rid = _s(row["id"])
            if rid is None:
                raise InputError("matched: a row has an empty id")
            members.setdefault(_match_key(row["match_id"]), []).append((kind, rid, _full_name(row)))
    for mid, rows in members.items():
        _, _, name = min(rows, key=lambda r: (r[0], r[1]))
        b.vertex(mid, MATCH, name=name or mid, records=sum(1 for r in rows if r[0] == 0),
                 accounts=sum(1 for r in rows if r[0] == 1))


def add_merged_from(b: GraphBuilder, id_changes: str | Path) -> None:
    """`merged_from` on each match vertex that absorbed ids of the previous output (the match output's id changes
    file; nothing when there is none)."""
    from c360.entity_resolution.id_changes import IdChanges

    for survivor, ids in IdChanges.read(id_changes).merged_from().items():
        vertex = b.vertices.get(_match_key(survivor))
        if vertex is not None and vertex.label == MATCH.name:
            vertex.props["merged_from"] = format_match_ids(ids)


def add_split_from(b: GraphBuilder, id_changes: str | Path) -> None:
    """`split_from` on each match vertex whose id this run created for records split off ids of the previous output
    (c360.entity_resolution.id_changes.split_from; nothing when there is no id changes file)."""
    from c360.entity_resolution.id_changes import split_from

    for new, ids in split_from(id_changes).items():
        vertex = b.vertices.get(_match_key(new))
        if vertex is not None and vertex.label == MATCH.name:
            vertex.props["split_from"] = format_match_ids(ids)


def add_accounts(b: GraphBuilder, accounts: pd.DataFrame) -> None:
    """The visitor of each park account (`visitor:<id>`, the account's properties; its name the account holder's)
    and its SameAs edge to the match. Runs after add_visits: the account's values win over the visits'."""
    for row in accounts.to_dict("records"):
        uid = _s(row["id"])
        props = {k: _s(row.get(k)) for k in ACCOUNT_RECORD_PROPS}
        vid = b.vertex(VISITOR.vertex_id(uid), VISITOR, name=_full_name(row) or uid, user_id=uid, **props)
        b.edge(SAME_AS, vid, _match_key(row["match_id"]))


def add_policies(b: GraphBuilder, src: dict[str, pd.DataFrame]) -> None:
    """policy vertices for every customer in the graph, vehicles (covers) and their addresses (locatedAt)."""
    customers = {vid for vid, v in b.vertices.items() if v.label == CUSTOMER.name}
    for cid in sorted(customers):
        number, _, line = cid.rpartition("-")
        pid = b.vertex(POLICY.vertex_id(cid), POLICY, name=f"{line} policy {number}", line=line, policy_number=number)
        b.edge(COVERS, cid, pid)
    auto, prop = S.AUTO_CUSTOMER, S.PROPERTY_CUSTOMERS
    auto_addr: dict[str, str] = {}
    if "auto_address" in src:
        a = src["auto_address"]
        require_columns(a, S.AUTO_ADDRESS.required, S.AUTO_ADDRESS.file)
        for r in a.to_dict("records"):
            pid = POLICY.vertex_id(f"{r[auto.key_column]}{auto.suffix}")
            if pid in b.vertices:
                aid = b.address(r["address"], r["city"], r["state"], r["zip"])
                if aid:
                    auto_addr[pid] = aid
                    b.edge(LOCATED_AT, pid, aid)
    if "auto_vehicles" in src:
        v = src["auto_vehicles"]
        require_columns(v, S.AUTO_VEHICLES.required, S.AUTO_VEHICLES.file)
        for r in v.to_dict("records"):
            pid = POLICY.vertex_id(f"{r[auto.key_column]}{auto.suffix}")
            vin = _s(r["vin"])
            if pid not in b.vertices or not vin:
                continue
            year = _s(r.get("year"))
            vid = b.vertex(VEHICLE.vertex_id(vin), VEHICLE, name=" ".join(x for x in (year, _s(r["make"]), _s(r["model"])) if x),
                           vin=vin, make=_s(r["make"]), model=_s(r["model"]), year=int(float(year)) if year else None,
                           color=_s(r.get("color")))
            b.edge(COVERS, pid, vid)
            if pid in auto_addr:
                b.edge(LOCATED_AT, vid, auto_addr[pid])
    if "property_addresses" in src:
        p = src["property_addresses"]
        require_columns(p, S.PROPERTY_ADDRESSES.required, S.PROPERTY_ADDRESSES.file)
        for r in p.to_dict("records"):
            pid = POLICY.vertex_id(f"{r[prop.key_column]}{prop.suffix}")
            if pid not in b.vertices:
                continue
            aid = b.address(r["address"], r["city"], r["state"], r["zip"])
            if aid:
                yb, iv = _s(r.get("year_built")), _s(r.get("insured_value"))
                b.vertex(pid, POLICY, property_type=_s(r.get("property_type")),
                         year_built=int(float(yb)) if yb else None, insured_value=float(iv) if iv else None)
                b.edge(LOCATED_AT, pid, aid)


def _visits_table(visits: str | Path | None, interactions: str | Path | pd.DataFrame | None) -> pd.DataFrame | None:
    if visits is not None:
        from c360.recsys.sigir17 import load_visits

        v = load_visits(visits)
        return v.groupby(["USER_ID", "ITEM_ID"]).size().rename("PHOTOS").reset_index()
    if interactions is not None:
        df = interactions if isinstance(interactions, pd.DataFrame) else read_table(interactions)
        require_columns(df, ["USER_ID", "ITEM_ID"], "interactions" if isinstance(interactions, pd.DataFrame)
                        else str(interactions))
        df = df.astype({"USER_ID": str, "ITEM_ID": str})
        if "EVENT_VALUE" in df.columns:
            vals = pd.to_numeric(df["EVENT_VALUE"], errors="coerce")
            if vals.isna().any():
                what = "interactions" if isinstance(interactions, pd.DataFrame) else interactions
                raise InputError(f"{what}: column EVENT_VALUE has non-numeric values")
            return df.assign(PHOTOS=vals).groupby(["USER_ID", "ITEM_ID"])["PHOTOS"].sum().round().astype(int).reset_index()
        return df.groupby(["USER_ID", "ITEM_ID"]).size().rename("PHOTOS").reset_index()
    return None


def add_visits(b: GraphBuilder, visits_df: pd.DataFrame | None, items: pd.DataFrame | None,
               recs: pd.DataFrame | None, model: str) -> None:
    """attraction and visitor vertices, visited (photos) and recommended (score, rank, model) edges."""
    if items is not None:
        for r in items.to_dict("records"):
            iid = _s(r["ITEM_ID"])
            b.vertex(iid, ATTRACTION, name=_s(r.get("NAME")) or iid, park=_s(r.get("PARK")), theme=_s(r.get("THEME")))

    def attraction(iid: str) -> str:
        return iid if iid in b.vertices else b.vertex(iid, ATTRACTION, name=iid, park=iid.split(":")[0] if ":" in iid else None)

    def visitor(uid: str) -> str:
        return b.vertex(VISITOR.vertex_id(uid), VISITOR, name=uid, user_id=uid)

    if visits_df is not None:
        for r in visits_df.sort_values(["USER_ID", "ITEM_ID"]).to_dict("records"):
            b.edge(VISITED, visitor(str(r["USER_ID"])), attraction(str(r["ITEM_ID"])), photos=int(r["PHOTOS"]))
    if recs is not None:
        for r in recs.to_dict("records"):
            u, i = visitor(str(r["USER_ID"])), attraction(str(r["ITEM_ID"]))
            b.edge(RECOMMENDED, u, i, eid=RECOMMENDED.edge_id(u, i, qualifier=model), score=float(r["SCORE"]),
                   rank=int(r["RANK"]), model=model)


def build_graph(matched: str | Path | pd.DataFrame | None = None, sources: str | Path | None = None,
                visits: str | Path | None = None, interactions: str | Path | pd.DataFrame | None = None,
                items: str | Path | pd.DataFrame | None = None, recs: str | Path | pd.DataFrame | None = None,
                model: str = "model", trips: str | Path | pd.DataFrame | None = None) -> GraphBuilder:
    """Assemble every vertex and edge the inputs give (see the module docstring)."""
    b = GraphBuilder()
    src = load_sources(sources) if sources is not None else {}
    accounts = None
    if matched is not None:
        df = matched if isinstance(matched, pd.DataFrame) else read_table(matched)
        require_columns(df, MATCHED_COLUMNS, "matched" if isinstance(matched, pd.DataFrame) else str(matched))
        if df["match_id"].isna().any():
            raise InputError(f"{matched if not isinstance(matched, pd.DataFrame) else 'matched'}: column match_id has empty values")
        park = df["source"].map(_s) == ACCOUNT_SOURCE
        accounts = df[park]
        add_customers(b, df[~park], with_matches=True, accounts=accounts)
        if not isinstance(matched, pd.DataFrame):
            add_merged_from(b, MatchOutput(matched).id_changes)
            add_split_from(b, MatchOutput(matched).id_changes)
    elif src:
        add_customers(b, customers_from_sources(src), with_matches=False)
    if src:
        add_policies(b, src)
    visits_df = _visits_table(visits, interactions)
    recs_df = None
    if recs is not None:
        from c360.recsys.recs import read_recs

        recs_df = recs if isinstance(recs, pd.DataFrame) else read_recs(recs)
        require_columns(recs_df, ["USER_ID", "ITEM_ID", "RANK", "SCORE"], "recs" if isinstance(recs, pd.DataFrame) else str(recs))
    items_df = None
    if isinstance(items, pd.DataFrame):
        items_df = items
    elif items is not None:
        items_df = read_table(items)
    elif visits_df is not None or recs_df is not None:
        from c360.recsys.sigir17 import load_items

        items_df = load_items(visits) if visits is not None else load_items()
    if items_df is not None:
        require_columns(items_df, ["ITEM_ID"], "items" if isinstance(items, pd.DataFrame) or items is None else str(items))
    add_visits(b, visits_df, items_df, recs_df, model)
    if accounts is not None:
        add_accounts(b, accounts)
    if trips is not None:
        add_trips(b, read_trips(trips))
    return b


def read_trips(trips: str | Path | pd.DataFrame) -> pd.DataFrame:
    """The trips table's USER_ID, ITEM_ID, SESSION_ID (strings), TIMESTAMP (numbers) and PARK (cleaned, when it
    has the column); InputError naming the table and the column for a missing column, an empty SESSION_ID or a
    TIMESTAMP that is no number."""
    what = "trips" if isinstance(trips, pd.DataFrame) else str(trips)
    df = trips if isinstance(trips, pd.DataFrame) else read_table(trips)
    require_columns(df, TRIPS_COLUMNS, what)
    if df["SESSION_ID"].isna().any():
        raise InputError(f"{what}: column SESSION_ID has empty values")
    ts = pd.to_numeric(df["TIMESTAMP"], errors="coerce")
    if ts.isna().any():
        raise InputError(f"{what}: column TIMESTAMP has empty or non-numeric values")
    out = pd.DataFrame({"USER_ID": df["USER_ID"].astype(str), "ITEM_ID": df["ITEM_ID"].astype(str),
                        "SESSION_ID": df["SESSION_ID"].astype(str), "TIMESTAMP": ts})
    if "PARK" in df.columns:
        out["PARK"] = df["PARK"].map(_s)
    return out


def item_park(b: GraphBuilder, item_id: str) -> str | None:
    """The park of an item: its attraction vertex's, else the `park` of `park:poi`."""
    v = b.vertices.get(item_id)
    park = v.props.get("park") if v is not None and v.label == ATTRACTION.name else None
    return park or (item_id.split(":")[0] if ":" in item_id else None)


def add_trips(b: GraphBuilder, trips: pd.DataFrame) -> None:
    """`trips` and `last_visit` on the visited edges that exist, `park_trips` on the visitors that exist (a trip:
    one USER_ID's rows of one SESSION_ID)."""
    if trips.empty:
        return
    pairs = trips.groupby(["USER_ID", "ITEM_ID"]).agg(trips=("SESSION_ID", "nunique"), last=("TIMESTAMP", "max"))
    for (uid, iid), n, last in zip(pairs.index, pairs["trips"], pairs["last"], strict=True):
        edge = b.edges.get(VISITED.edge_id(VISITOR.vertex_id(uid), iid))
        if edge is not None:
            edge.props.update(trips=int(n), last_visit=int(last))
    given = trips["PARK"] if "PARK" in trips.columns else pd.Series(None, index=trips.index, dtype=object)
    parks = {i: item_park(b, i) for i in trips["ITEM_ID"].unique()}
    park = given.where(given.notna(), trips["ITEM_ID"].map(parks))
    counted = trips.assign(_park=park).dropna(subset=["_park"])
    per_user: dict[str, dict[str, int]] = {}
    per_park = counted.groupby(["USER_ID", "_park"])["SESSION_ID"].nunique()
    for (uid, p), n in zip(per_park.index, per_park, strict=True):
        per_user.setdefault(uid, {})[p] = int(n)
    for uid, counts in per_user.items():
        vertex = b.vertices.get(VISITOR.vertex_id(uid))
        if vertex is not None and vertex.label == VISITOR.name:
            vertex.props["park_trips"] = format_park_trips(counts)


def account_match_ids(matched: str | Path) -> list[int]:
    """The match_id of every park account (source ACCOUNT_SOURCE) in a match output, a file or a directory of parts:
    one column pair read; none when it has no `source` column."""
    import pyarrow.parquet as pq

    from c360.recsys.interactions import parquet_files

    ids: list[int] = []
    for f in parquet_files(matched):
        if "source" not in pq.ParquetFile(f).schema_arrow.names:
            return []
        t = pq.read_table(f, columns=["match_id", "source"]).to_pandas()
        ids += t.loc[t["source"] == ACCOUNT_SOURCE, "match_id"].astype(int).tolist()
    return ids


def record_elements(record: dict, match_id: int | str, records: int, new_match: bool,
                    accounts: int = 0) -> tuple[list[Element], list[Element]]:
    """What one committed record (merged columns) adds to the graph, as the nightly's export would: a customer record
    its customer vertex, address and policy; a park account (source ACCOUNT_SOURCE) its visitor; either SameAs its
    match. The match vertex gets the record's name only when it is new; an existing one just its new counts
    (`records` customers, `accounts` park accounts)."""
    b = GraphBuilder()
    row = pd.DataFrame([{**record, "match_id": int(match_id)}])
    if record.get("source") == ACCOUNT_SOURCE:
        add_matches(b, row.iloc[:0], row)
        add_accounts(b, row)
    else:
        add_customers(b, row, with_matches=True)
        add_policies(b, {})
    match = b.vertices[str(int(match_id))]
    match.props = {**(match.props if new_match else {}), "records": int(records), "accounts": int(accounts)}
    return list(b.vertices.values()), list(b.edges.values())


def _refuse_empty(written) -> None:
    if not written.counts["vertices"]:
        raise InputError("graph export: the inputs give no vertex (--matched, --sources, --visits/--interactions, "
                         "--items, --recs)")


EXPORT_ENGINES = ("spark", "local")


def export_graph(out_dir: str | Path, *, spark=None, settings=None, engine: str = "spark", values: str = EXACT,
                 **inputs):
    """Compute the graph and write it as Neptune bulk-load CSV parts per label into out_dir (graph.neptune_parts),
    replacing it whole. Returns the WrittenGraph: counts by label and the files. `values`: EXACT (default) for
    files a loader reads (Neptune's, ours), SPREADSHEET for files a person opens (graph.neptune_csv).

    `engine="spark"` (the nightly's): computed with Spark (inputs as for build_graph; paths may be any Hadoop path,
    tables directories of part files); nothing but the counts comes back to the driver. `engine="local"`: the same
    elements computed in this process by `build_graph`, one part per label, for inputs that fit in memory (a
    notebook's sample): no JVM to start."""
    if engine not in EXPORT_ENGINES:
        raise InputError(f"--engine: {engine!r} is not one of {', '.join(EXPORT_ENGINES)}")
    check_values(values)
    if all(inputs.get(k) is None for k in ("matched", "sources", "visits", "interactions", "items", "recs")):
        raise InputError("graph export: no input given (--matched, --sources, --visits/--interactions, --items, --recs)")
    if engine == "local":
        return _export_local(Path(out_dir), values, **inputs)
    from c360.graph.neptune_parts import write_graph_parts
    from c360.graph.spark_graph import check_recs_header, graph_frames

    if isinstance(inputs.get("recs"), (str, Path)):
        check_recs_header(inputs["recs"])   # a bad header fails before a Spark session starts
    if spark is None:
        from c360.spark import get_spark

        spark = get_spark(settings, app_name="c360-graph-export")
    frames = graph_frames(spark, **inputs)
    try:
        return write_graph_parts(spark, frames, out_dir, props_of, check=_refuse_empty, values=values)
    finally:
        frames.release()


def _export_local(out_dir: Path, values: str, **inputs):
    from c360.graph.neptune_parts import WrittenGraph, write_element_parts
    from c360.io import atomic_path

    b = build_graph(**inputs)
    written = WrittenGraph(str(out_dir))
    for kind, elements in (("vertices", b.vertices.values()), ("edges", b.edges.values())):
        for e in elements:
            written.counts[kind][e.label] = written.counts[kind].get(e.label, 0) + 1
    _refuse_empty(written)
    with atomic_path(out_dir) as tmp:
        files = write_element_parts(tmp, list(b.vertices.values()), list(b.edges.values()), props_of, values)
        written.files = [f.name for f in files]
    return written
