"""The customer-360 property graph as Spark DataFrames, one per vertex or edge label (declared in graph.schema).

The same vertices, edges, ids and properties as `graph.export.GraphBuilder` computes record by record (tests compare
them), computed by joins and aggregations: nothing per record reaches the driver. Every frame has `~id` (edges also
`~from`, `~to`) and the label's properties, named and typed as graph.schema declares them (a contribution with a property
its label does not declare is refused).

Where the record-by-record builder lets a later record update an element (two spellings of one address, a vehicle
listed twice, a property policy's details), each property takes its last non-empty value in the builder's order:
every contribution carries an order key `_o` (phase, record id, position in its file) and the merge keeps, per
property, the value with the largest key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from c360.entity_resolution import sources as S
from c360.errors import InputError
from c360.graph.schema import (
    ACCOUNT_RECORD_PROPS,
    ACCOUNT_SOURCE,
    ADDRESS,
    ATTRACTION,
    COVERS,
    CUSTOMER,
    CUSTOMER_RECORD_PROPS,
    EDGE_ID_ARROW,
    LOCATED_AT,
    MATCH,
    MERGED_FROM_SEP,
    PARK_TRIPS_EQ,
    PARK_TRIPS_SEP,
    POLICY,
    RECOMMENDED,
    SAME_AS,
    VEHICLE,
    VISITED,
    VISITOR,
    EdgeLabel,
    VertexLabel,
    check_properties,
)
from c360.io import SPARK_CSV_OPTIONS, require_columns
from c360.layout import MatchOutput

PERSON_COLUMNS = ["id", "first_name", "last_name", "date_of_birth"]
MATCHED_COLUMNS = [*PERSON_COLUMNS, "source", "match_id"]
TRIPS_COLUMNS = ["USER_ID", "ITEM_ID", "SESSION_ID", "TIMESTAMP"]
# Python's str.isspace() characters, as a Java regex class ((?U): Unicode white space, plus the separators \x1c-\x1f)
_SPACE = r"[\s\x1c-\x1f]"


@dataclass
class GraphFrames:
    """DataFrames by label: vertices (`~id`, properties) and edges (`~id`, `~from`, `~to`, properties)."""

    vertices: dict[str, object] = field(default_factory=dict)
    edges: dict[str, object] = field(default_factory=dict)
    cached: list = field(default_factory=list)   # inputs every label reads again: kept until `release`

    def release(self) -> None:
        """Drop the cached inputs."""
        for df in self.cached:
            df.unpersist()
        self.cached.clear()


# ---- column helpers ---------------------------------------------------------------------------------------

def clean(col):
    """A string with surrounding white space removed; NULL when missing or blank (the builder's `_s`)."""
    from pyspark.sql import functions as F

    s = F.regexp_replace(col.cast("string"), rf"(?U)^{_SPACE}+|{_SPACE}+$", "")
    return F.when(s != "", s)


def _opt(df, name: str):
    from pyspark.sql import functions as F

    return F.col(f"`{name}`") if name in df.columns else F.lit(None).cast("string")


def _int(col):
    """int(float(text)) of a cleaned string (NULL when it is no number)."""
    return col.cast("double").cast("long")


def _join_words(*cols):
    """' '.join of the present values; NULL when none is."""
    from pyspark.sql import functions as F

    s = F.concat_ws(" ", *cols)
    return F.when(s != "", s)


def _order(phase: int, key=None, pos=None):
    from pyspark.sql import functions as F

    key = F.lit("") if key is None else F.coalesce(key, F.lit(""))
    pos = F.lit(0).cast("long") if pos is None else pos.cast("long")
    return F.struct(F.lit(phase).alias("phase"), key.alias("key"), pos.alias("pos"))


def address_id_col(street, city, state, zip_):
    """`address:` + 12 hex of sha1("street|city|state|zip"), each cleaned, lower-cased, white space runs as one
    space (graph.export.address_id)."""
    from pyspark.sql import functions as F

    parts = [F.regexp_replace(F.lower(F.coalesce(clean(c), F.lit(""))), rf"(?U){_SPACE}+", " ")
             for c in (street, city, state, zip_)]
    return F.concat(F.lit(ADDRESS.id_prefix), F.substring(F.sha1(F.concat_ws("|", *parts)), 1, 12))


def _address(df, street, city, state, zip_, order):
    """(address vertices, the address id column) of rows whose street is not blank."""
    from pyspark.sql import functions as F

    vals = [clean(c) for c in (street, city, state, zip_)]
    rows = df.where(vals[0].isNotNull())
    vertices = rows.select(address_id_col(street, city, state, zip_).alias("~id"), order.alias("_o"),
                           F.concat_ws(", ", *vals).alias("name"), vals[0].alias("address"), vals[1].alias("city"),
                           vals[2].alias("state"), vals[3].alias("zip"))
    return vertices


# ---- merging contributions --------------------------------------------------------------------------------

def _merge_vertices(parts: list, label: VertexLabel):
    """One row per `~id`: each of the label's properties, typed as declared, its last non-empty value by `_o` (the
    builder's update order)."""
    from pyspark.sql import functions as F

    df = parts[0]
    for p in parts[1:]:
        df = df.unionByName(p, allowMissingColumns=True)
    for name in label.names:
        if name not in df.columns:
            df = df.withColumn(name, F.lit(None))
    aggs = [F.max(F.when(F.col(p.name).isNotNull(), F.struct(F.col("_o").alias("o"), F.col(p.name).alias("v"))))["v"]
            .cast(p.spark_type).alias(p.name) for p in label.properties]
    return df.groupBy("~id").agg(*aggs)


def _merge_edges(parts: list, label: EdgeLabel):
    """One row per `~id`: the last contribution by `_o` wins whole (the builder replaces an edge); the label's
    properties typed as declared."""
    from pyspark.sql import functions as F

    df = parts[0]
    for p in parts[1:]:
        df = df.unionByName(p, allowMissingColumns=True)
    if not label.properties:
        return df.select("~id", "~from", "~to").dropDuplicates(["~id"])
    for prop in label.properties:  # a property no contribution has (visited's trips without a trips table): NULL
        if prop.name not in df.columns:
            df = df.withColumn(prop.name, F.lit(None).cast(prop.spark_type))
    last = F.max(F.struct("_o", "~from", "~to", *label.names)).alias("_last")
    return df.groupBy("~id").agg(last).select(
        "~id", *[F.col("_last")[c].alias(c) for c in ("~from", "~to")],
        *[F.col("_last")[p.name].cast(p.spark_type).alias(p.name) for p in label.properties])


def _edge_id(label: EdgeLabel, frm, to, qualifier: str | None = None):
    """The edge id column (graph.schema's `EdgeLabel.edge_id`)."""
    from pyspark.sql import functions as F

    return F.concat(F.lit(label.id_head(qualifier)), frm, F.lit(EDGE_ID_ARROW), to)


def _edge(df, label: EdgeLabel, frm, to, order=None, eid=None, **props):
    eid = _edge_id(label, frm, to) if eid is None else eid
    cols = [eid.alias("~id"), frm.alias("~from"), to.alias("~to")]
    cols += [order.alias("_o")] if order is not None else [_order(0).alias("_o")]
    return df.select(*cols, *[c.alias(n) for n, c in props.items()])


# ---- reading inputs ---------------------------------------------------------------------------------------

def read_frame(spark, path: str | Path, what: str, kind: str | None = None, schema: str | None = None):
    """A CSV (a file or a directory of part files, in c360.io's CSV dialect; all columns as strings, or `schema`'s
    columns and types, a DDL string the header must match) or Parquet table as a DataFrame; any Hadoop path.
    InputError naming `what` and the path when it is missing or unreadable."""
    text = str(path)
    local = "://" not in text or text.startswith("file:")
    if local and not Path(text.removeprefix("file:")).exists():
        raise InputError(f"{text}: file not found")
    kind = kind or _kind(text, local)
    try:
        if kind == "parquet":
            return spark.read.parquet(text)
        # RFC 4180 as our writers write it: quoted fields, doubled quotes, line breaks inside quotes
        reader = spark.read.options(**SPARK_CSV_OPTIONS)
        if schema is not None:
            reader = reader.schema(schema).option("enforceSchema", "false").option("mode", "FAILFAST")
        return reader.csv(text, inferSchema=False, multiLine=True,
                          pathGlobFilter="*.csv*" if local and Path(text).is_dir() else None)
    except Exception as exc:  # AnalysisException: path missing, not a table
        raise InputError(f"{text}: cannot read {what} ({kind}): {str(exc).splitlines()[0]}") from exc


def _kind(text: str, local: bool) -> str:
    name = text.lower().rstrip("/")
    return "parquet" if name.endswith((".parquet", ".pq")) or (
        local and Path(text).is_dir() and any(Path(text).glob("*.parquet"))) else "csv"


def read_recs(spark, path: str | Path):
    """Recommendations (c360.recsys.recs: USER_ID, ITEM_ID, RANK, SCORE) with their stated schema; a local CSV's
    header is checked first (InputError naming the file and the columns), another URI's when Spark reads it."""
    from c360.recsys.recs import REC_SPARK_SCHEMA

    check_recs_header(path)
    return read_frame(spark, path, "recs", schema=REC_SPARK_SCHEMA)


def check_recs_header(path: str | Path) -> None:
    """A local recommendations CSV's header (InputError naming the file and the columns); other URIs pass. Cheap:
    the export runs it before a Spark session starts."""
    from c360.recsys.recs import recs_csv_parts

    text = str(path)
    local = "://" not in text or text.startswith("file:")
    if local and Path(text.removeprefix("file:")).exists() and _kind(text, local) == "csv":
        recs_csv_parts(text.removeprefix("file:"))


def read_sources(spark, sources_dir: str | Path) -> dict:
    """The source tables present in DIR (missing ones are simply absent), keyed by table name."""
    d = str(sources_dir)
    if "://" not in d and not Path(d).is_dir():
        raise InputError(f"{d}: --sources directory not found")
    out = {}
    for t in S.SOURCE_TABLES:
        path = f"{d.rstrip('/')}/{t.file}"
        if "://" in d or Path(path).exists():
            try:
                out[t.name] = read_frame(spark, path, t.name, kind="csv")
            except InputError:
                if "://" not in d:
                    raise
    return out


def _merged_customers(spark, src: dict):
    """The source customer tables as merged rows (the merge job's `to_merged_spark`), without match ids."""
    from pyspark.sql import types as T

    frames = []
    for t in S.CUSTOMER_TABLES:
        if t.name not in src:
            continue
        require_columns(src[t.name], t.source_names(PERSON_COLUMNS), t.file)
        addresses = src.get(t.address.name)
        if addresses is None:  # no address table: the address is missing
            schema = T.StructType([T.StructField(c, T.StringType()) for c in (t.key_column, *S.ADDRESS_COLUMNS)])
            addresses = spark.createDataFrame([], schema)
        else:
            require_columns(addresses, (t.key_column, *S.ADDRESS_COLUMNS), t.address.file)
        frames.append(S.to_merged_spark(t, src[t.name], addresses))
    if not frames:
        return None
    df = frames[0]
    for f in frames[1:]:
        df = df.unionByName(f, allowMissingColumns=True)
    return df


# ---- the graph --------------------------------------------------------------------------------------------

_SYSTEM = frozenset(("~id", "~from", "~to", "_o"))


@dataclass
class _Parts:
    """Each label's contributions (DataFrames of `~id` (+ `~from`, `~to`), `_o` and some of its properties)."""

    vertices: dict[VertexLabel, list] = field(default_factory=dict)
    edges: dict[EdgeLabel, list] = field(default_factory=dict)

    def v(self, label: VertexLabel, df) -> None:
        check_properties("vertex", label.name, set(df.columns) - _SYSTEM)
        self.vertices.setdefault(label, []).append(df)

    def e(self, label: EdgeLabel, df) -> None:
        check_properties("edge", label.name, set(df.columns) - _SYSTEM)
        self.edges.setdefault(label, []).append(df)


def _match_id(df):
    """The match_id column as the string of its integer (graph.export's `str(int(m))`)."""
    from pyspark.sql import functions as F

    integral = dict(df.dtypes)["match_id"] in ("bigint", "int", "smallint", "tinyint")
    mid = F.col("match_id").cast("long") if integral else F.col("match_id").cast("double").cast("long")
    return mid.cast("string")


def _customers(parts: _Parts, customers, with_matches: bool, what: str):
    """customer vertices (+ match vertices and SameAs with match ids), customer→address; with match ids, the rows
    of park accounts (source `park`) are left to `_accounts` (counted by their match here). Returns the customer
    ids."""
    from pyspark.sql import functions as F

    cid = clean(F.col("id"))
    if customers.where(cid.isNull()).limit(1).count():
        raise InputError(f"{what}: a row has an empty id")
    if with_matches:
        customers = customers.where(~_is_account(customers))
    props = {k: clean(_opt(customers, k)) for k in CUSTOMER_RECORD_PROPS}
    rows = customers.select(cid.alias("_cid"), *[c.alias(k) for k, c in props.items()],
                            *[_opt(customers, c).alias(f"_{c}") for c in S.ADDRESS_COLUMNS],
                            *([_match_id(customers).alias("_mid")] if with_matches else []))
    first, last = F.col("first_name"), F.col("last_name")
    order = _order(0, F.col("_cid"))
    name = F.coalesce(_join_words(first, last), F.col("_cid"))
    parts.v(CUSTOMER, rows.select(F.col("_cid").alias("~id"), order.alias("_o"), name.alias("name"),
                                    F.lower(first).alias("first_name_lc"), F.lower(last).alias("last_name_lc"),
                                    *CUSTOMER_RECORD_PROPS))
    if with_matches:
        parts.e(SAME_AS, _edge(rows, SAME_AS, F.col("_cid"), F.col("_mid")))
    addr = [F.col(f"_{c}") for c in S.ADDRESS_COLUMNS]
    parts.v(ADDRESS, _address(rows, *addr, order))
    with_addr = rows.where(clean(addr[0]).isNotNull())
    parts.e(LOCATED_AT, _edge(with_addr, LOCATED_AT, F.col("_cid"), address_id_col(*addr)))
    return rows.select("_cid").distinct()


def _is_account(df):
    """True on a matched row of a theme-park app account (source `park`), false on any other."""
    from pyspark.sql import functions as F

    return F.coalesce(clean(_opt(df, "source")) == F.lit(ACCOUNT_SOURCE), F.lit(False))


def _matches(parts: _Parts, matched) -> None:
    """A match vertex per match_id: `records` (its customers), `accounts` (its park accounts) and the name of its
    lowest customer id, else of its lowest account id (graph.export.add_matches)."""
    from pyspark.sql import functions as F

    kind = F.when(_is_account(matched), 1).otherwise(0)
    m = matched.select(kind.alias("_kind"), clean(F.col("id")).alias("_rid"), _match_id(matched).alias("_mid"),
                       _join_words(clean(_opt(matched, "first_name")), clean(_opt(matched, "last_name")))
                       .alias("_name"))
    first = F.min(F.struct("_kind", "_rid", "_name"))
    parts.v(MATCH, m.groupBy("_mid").agg(first["_name"].alias("_name"),
                                         F.sum(1 - F.col("_kind")).alias("records"),
                                         F.sum("_kind").alias("accounts"))
            .select(F.col("_mid").alias("~id"), _order(0).alias("_o"),
                    F.coalesce(F.col("_name"), F.col("_mid")).alias("name"), "records", "accounts"))


def _merged_from(parts: _Parts, spark, changes: str | Path, matched) -> None:
    """`merged_from` on each match vertex that absorbed ids of the previous output, from the match output's id
    changes file (graph.export.add_merged_from; nothing when there is none)."""
    from pyspark.sql import functions as F

    from c360 import hadoop_fs

    if not (hadoop_fs.exists(spark, changes) if isinstance(changes, str) else Path(changes).exists()):
        return
    merged = (read_frame(spark, changes, "id changes", kind="parquet").where(F.col("change") == F.lit("merged"))
              .select(F.element_at("into", 1).cast("long").cast("string").alias("_mid"),
                      F.col("match_id").cast("long").alias("_old")))
    ids = F.transform(F.array_sort(F.collect_list("_old")), lambda x: x.cast("string"))
    survivors = merged.groupBy("_mid").agg(F.concat_ws(MERGED_FROM_SEP, ids).alias("merged_from"))
    present = matched.select(_match_id(matched).alias("_mid")).distinct()
    parts.v(MATCH, survivors.join(present, "_mid", "left_semi")
            .select(F.col("_mid").alias("~id"), _order(1).alias("_o"), "merged_from"))


def _split_from(parts: _Parts, spark, changes: str | Path, matched) -> None:
    """`split_from` on each match vertex whose id this run created for records split off ids of the previous
    output: the `new` ids in a split or merged id's `into` (c360.entity_resolution.id_changes.split_from;
    graph.export.add_split_from; nothing when there is no id changes file)."""
    from pyspark.sql import functions as F

    from c360 import hadoop_fs

    if not (hadoop_fs.exists(spark, changes) if isinstance(changes, str) else Path(changes).exists()):
        return
    rows = read_frame(spark, changes, "id changes", kind="parquet")
    new = rows.where(F.col("change") == F.lit("new")).select(F.col("match_id").cast("long").alias("_new"))
    parts_of = (rows.where(F.col("change").isin("split", "merged"))
                .select(F.explode(F.transform("into", lambda x: x.cast("long"))).alias("_new"),
                        F.col("match_id").cast("long").alias("_old"))
                .join(new, "_new", "left_semi"))
    ids = F.transform(F.array_sort(F.collect_set("_old")), lambda x: x.cast("string"))
    created = (parts_of.groupBy(F.col("_new").cast("string").alias("_mid"))
               .agg(F.concat_ws(MERGED_FROM_SEP, ids).alias("split_from")))
    present = matched.select(_match_id(matched).alias("_mid")).distinct()
    parts.v(MATCH, created.join(present, "_mid", "left_semi")
            .select(F.col("_mid").alias("~id"), _order(1).alias("_o"), "split_from"))


def _accounts(parts: _Parts, matched) -> None:
    """The visitor of each park account (its properties win over the visits': phase 8) and its SameAs edge."""
    from pyspark.sql import functions as F

    a = matched.where(_is_account(matched))
    uid = clean(F.col("id"))
    props = {k: clean(_opt(a, k)) for k in ACCOUNT_RECORD_PROPS}
    rows = a.select(uid.alias("_uid"), *[c.alias(k) for k, c in props.items()], _match_id(a).alias("_mid"))
    vid = F.concat(F.lit(VISITOR.id_prefix), F.col("_uid"))
    name = F.coalesce(_join_words(F.col("first_name"), F.col("last_name")), F.col("_uid"))
    parts.v(VISITOR, rows.select(vid.alias("~id"), _order(8, F.col("_uid")).alias("_o"), name.alias("name"),
                                 F.col("_uid").alias("user_id"), *ACCOUNT_RECORD_PROPS))
    parts.e(SAME_AS, _edge(rows, SAME_AS, vid, F.col("_mid")))


def _policies(parts: _Parts, cids, src: dict) -> None:
    """policy vertices for every customer, vehicles (covers) and their addresses (locatedAt)."""
    from pyspark.sql import functions as F

    policies = _policy_vertices(parts, cids)
    auto_addr = None
    if "auto_address" in src:
        with_addr = _policy_addresses(parts, src, S.AUTO_ADDRESS, S.AUTO_CUSTOMER, 2, policies)
        last = F.max(F.struct(F.col("_pos"), F.col("_aid")))["_aid"]  # a policy's vehicles: its last address
        auto_addr = with_addr.groupBy("_pid").agg(last.alias("_aid"))
    if "auto_vehicles" in src:
        _vehicles(parts, src["auto_vehicles"], policies, auto_addr)
    if "property_addresses" in src:
        p = _policy_addresses(parts, src, S.PROPERTY_ADDRESSES, S.PROPERTY_CUSTOMERS, 4, policies)
        parts.v(POLICY, p.select(F.col("_pid").alias("~id"), _order(4, None, F.col("_pos")).alias("_o"),
                                   clean(_opt(p, "property_type")).alias("property_type"),
                                   _int(clean(_opt(p, "year_built"))).alias("year_built"),
                                   clean(_opt(p, "insured_value")).cast("double").alias("insured_value")))


def _policy_vertices(parts: _Parts, cids):
    """policy vertices (line and number from the customer id) and customer→policy (covers); returns the policy ids
    (`_pid`)."""
    from pyspark.sql import functions as F

    cid = F.col("_cid")
    number = F.when(cid.contains("-"), F.regexp_extract(cid, r"(?s)^(.*)-[^-]*$", 1)).otherwise(F.lit(""))
    line = F.regexp_extract(cid, r"(?s)([^-]*)$", 1)
    pid = F.concat(F.lit(POLICY.id_prefix), cid)
    parts.v(POLICY, cids.select(pid.alias("~id"), _order(1, cid).alias("_o"),
                                  F.concat(line, F.lit(" policy "), number).alias("name"),
                                  F.when(line != "", line).alias("line"),
                                  F.when(number != "", number).alias("policy_number")))
    parts.e(COVERS, _edge(cids, COVERS, cid, pid))
    return cids.select(pid.alias("_pid"))


def _keyed(df, t: S.CustomerTable, policies):
    """The rows of a policy's table whose policy is in the graph (`policies`), with its id `_pid` and their file
    position `_pos`."""
    from pyspark.sql import functions as F

    key = F.concat(F.lit(POLICY.id_prefix), F.col(t.key_column).cast("string"), F.lit(t.suffix))
    return (df.withColumn("_pid", key).withColumn("_pos", F.monotonically_increasing_id())
            .join(policies, "_pid", "left_semi"))


def _policy_addresses(parts: _Parts, src: dict, table: S.SourceTable, line: S.CustomerTable, phase: int, policies):
    """address vertices and policy→address (locatedAt) of a policy address table; returns its rows with an address
    (`_aid`)."""
    from pyspark.sql import functions as F

    rows = src[table.name]
    require_columns(rows, table.required, table.file)
    rows = _keyed(rows, line, policies)
    cols = [F.col(c) for c in S.ADDRESS_COLUMNS]
    parts.v(ADDRESS, _address(rows, *cols, _order(phase, None, F.col("_pos"))))
    with_addr = rows.where(clean(cols[0]).isNotNull()).withColumn("_aid", address_id_col(*cols))
    parts.e(LOCATED_AT, _edge(with_addr, LOCATED_AT, F.col("_pid"), F.col("_aid")))
    return with_addr


def _vehicles(parts: _Parts, v, policies, auto_addr) -> None:
    """vehicle vertices, policy→vehicle (covers) and, where the policy has an address (`auto_addr`), vehicle→address
    (locatedAt)."""
    from pyspark.sql import functions as F

    require_columns(v, S.AUTO_VEHICLES.required, S.AUTO_VEHICLES.file)
    v = _keyed(v, S.AUTO_CUSTOMER, policies).withColumn("_vin", clean(F.col("vin"))).where(F.col("_vin").isNotNull())
    vid = F.concat(F.lit(VEHICLE.id_prefix), F.col("_vin"))
    year, make, model = clean(F.col("year")), clean(F.col("make")), clean(F.col("model"))
    parts.v(VEHICLE, v.select(vid.alias("~id"), _order(3, None, F.col("_pos")).alias("_o"),
                                _join_words(year, make, model).alias("name"), F.col("_vin").alias("vin"),
                                make.alias("make"), model.alias("model"), _int(year).alias("year"),
                                clean(_opt(v, "color")).alias("color")))
    parts.e(COVERS, _edge(v, COVERS, F.col("_pid"), vid))
    if auto_addr is not None:
        located = v.join(auto_addr, "_pid")
        parts.e(LOCATED_AT, _edge(located, LOCATED_AT, vid, F.col("_aid")))


def _visits_frame(spark, visits, interactions):
    """(USER_ID, ITEM_ID, PHOTOS) per pair: sigir17 photos, or interactions summed (EVENT_VALUE, rounded half to
    even) or counted."""
    from pyspark.sql import functions as F

    if visits is not None:
        from c360.recsys.sigir17 import load_visits

        # the shipped sigir17 visits are small: aggregated in pandas, handed to Spark as a few thousand pairs
        v = load_visits(visits).groupby(["USER_ID", "ITEM_ID"]).size().rename("PHOTOS").reset_index()
        return spark.createDataFrame(v.astype({"USER_ID": str, "ITEM_ID": str, "PHOTOS": "int64"}))
    if interactions is None:
        return None
    what = str(interactions) if isinstance(interactions, (str, Path)) else "interactions"
    df = read_frame(spark, interactions, "interactions") if isinstance(interactions, (str, Path)) else interactions
    if not hasattr(df, "rdd"):  # a pandas frame
        df = spark.createDataFrame(df)
    require_columns(df, ["USER_ID", "ITEM_ID"], what)
    df = df.select(F.col("USER_ID").cast("string").alias("USER_ID"), F.col("ITEM_ID").cast("string").alias("ITEM_ID"),
                   *([F.col("EVENT_VALUE").cast("double").alias("_v")] if "EVENT_VALUE" in df.columns else []))
    if "_v" in df.columns:
        if df.where(F.col("_v").isNull() | F.isnan("_v")).limit(1).count():
            raise InputError(f"{what}: column EVENT_VALUE has non-numeric values")
        return df.groupBy("USER_ID", "ITEM_ID").agg(F.bround(F.sum("_v"), 0).cast("long").alias("PHOTOS"))
    return df.groupBy("USER_ID", "ITEM_ID").agg(F.count("*").alias("PHOTOS"))


def _items_frame(spark, items, visits, needed: bool):
    """The attractions table: --items, else the sigir17 POI lists when visits or recommendations need them."""
    if items is not None:
        df = items if hasattr(items, "columns") and not isinstance(items, (str, Path)) else None
        if df is None:
            df = read_frame(spark, items, "items")
        elif not hasattr(df, "rdd"):  # a pandas frame
            df = spark.createDataFrame(df.astype(str))
        require_columns(df, ["ITEM_ID"], str(items) if isinstance(items, (str, Path)) else "items")
        return df
    if not needed:
        return None
    from c360.recsys.sigir17 import load_items

    df = load_items(visits) if visits is not None else load_items()  # the shipped POI lists: a few hundred rows
    require_columns(df, ["ITEM_ID"], "items")
    return spark.createDataFrame(df.astype(str))


def _visits_and_recs(parts: _Parts, visits, items, recs, model: str, trip_pairs=None) -> None:
    """attraction and visitor vertices, visited (photos; trips and last_visit from `trip_pairs`) and recommended
    (score, rank, model) edges."""
    from pyspark.sql import functions as F

    known = None
    if items is not None:
        iid = clean(F.col("ITEM_ID"))
        rows = items.withColumn("_iid", iid).where(F.col("_iid").isNotNull()) \
            .withColumn("_pos", F.monotonically_increasing_id())
        parts.v(ATTRACTION, rows.select(F.col("_iid").alias("~id"), _order(5, None, F.col("_pos")).alias("_o"),
                                          F.coalesce(clean(_opt(items, "NAME")), F.col("_iid")).alias("name"),
                                          clean(_opt(items, "PARK")).alias("park"),
                                          clean(_opt(items, "THEME")).alias("theme")))
        known = rows.select(F.col("_iid").alias("_i"))
    pairs = []
    if visits is not None:
        pairs.append(visits.select(F.col("USER_ID").alias("_u"), F.col("ITEM_ID").alias("_i")))
    if recs is not None:
        pairs.append(recs.select(F.col("USER_ID").cast("string").alias("_u"),
                                 F.col("ITEM_ID").cast("string").alias("_i")))
    if pairs:
        both = pairs[0] if len(pairs) == 1 else pairs[0].unionByName(pairs[1])
        ids = both.select("_i").distinct()
        if known is not None:  # an attraction the items do not list: named by its id, park from `park:poi`
            ids = ids.join(known, "_i", "left_anti")
        i = F.col("_i")
        parts.v(ATTRACTION, ids.select(i.alias("~id"), _order(6).alias("_o"), i.alias("name"),
                                         F.when(i.contains(":"), F.substring_index(i, ":", 1)).alias("park")))
        users = both.select("_u").distinct()
        parts.v(VISITOR, users.select(F.concat(F.lit(VISITOR.id_prefix), F.col("_u")).alias("~id"), _order(6).alias("_o"),
                                        F.col("_u").alias("name"), F.col("_u").alias("user_id")))
    if visits is not None:
        u = F.concat(F.lit(VISITOR.id_prefix), F.col("USER_ID"))
        extra = {}
        if trip_pairs is not None:
            visits = visits.join(trip_pairs, ["USER_ID", "ITEM_ID"], "left")
            extra = {"last_visit": F.col("_last"), "trips": F.col("_trips")}
        parts.e(VISITED, _edge(visits, VISITED, u, F.col("ITEM_ID"), photos=F.col("PHOTOS").cast("long"), **extra))
    if recs is not None:
        r = recs  # _file, _pos: where each row sits in the input (a later duplicate wins)
        u, i = F.concat(F.lit(VISITOR.id_prefix), F.col("USER_ID").cast("string")), F.col("ITEM_ID").cast("string")
        parts.e(RECOMMENDED, _edge(r, RECOMMENDED, u, i, order=_order(7, F.col("_file"), F.col("_pos")),
                                   eid=_edge_id(RECOMMENDED, u, i, qualifier=model),
                                   score=F.col("SCORE").cast("double"),
                                   rank=F.col("RANK").cast("double").cast("long"), model=F.lit(model)))


def read_trips(spark, trips):
    """The trips table's USER_ID, ITEM_ID, SESSION_ID (strings), TIMESTAMP (`_ts`, a number) and PARK (cleaned,
    NULL without the column); InputError as graph.export.read_trips."""
    from pyspark.sql import functions as F

    what = str(trips) if isinstance(trips, (str, Path)) else "trips"
    df = read_frame(spark, trips, "trips") if isinstance(trips, (str, Path)) else trips
    if not hasattr(df, "rdd"):  # a pandas frame
        df = spark.createDataFrame(df)
    require_columns(df, TRIPS_COLUMNS, what)
    integral = dict(df.dtypes)["TIMESTAMP"] in ("bigint", "int", "smallint", "tinyint")
    ts = F.col("TIMESTAMP").cast("long") if integral else F.col("TIMESTAMP").cast("double")
    out = df.select(F.col("USER_ID").cast("string").alias("USER_ID"), F.col("ITEM_ID").cast("string").alias("ITEM_ID"),
                    F.col("SESSION_ID").cast("string").alias("SESSION_ID"), ts.alias("_ts"),
                    clean(_opt(df, "PARK")).alias("PARK"))
    if out.where(F.col("SESSION_ID").isNull()).limit(1).count():
        raise InputError(f"{what}: column SESSION_ID has empty values")
    if out.where(F.col("_ts").isNull() | F.isnan(F.col("_ts").cast("double"))).limit(1).count():
        raise InputError(f"{what}: column TIMESTAMP has empty or non-numeric values")
    return out


def _trip_pairs(trips):
    """Per (USER_ID, ITEM_ID): `_trips` (distinct SESSION_IDs), `_last` (latest TIMESTAMP, a whole number)."""
    from pyspark.sql import functions as F

    return trips.groupBy("USER_ID", "ITEM_ID").agg(F.countDistinct("SESSION_ID").alias("_trips"),
                                                   F.max("_ts").cast("long").alias("_last"))


def _park_trips(parts: _Parts, trips) -> None:
    """`park_trips` of the visitors that exist (phase 9): distinct SESSION_IDs per park, a row's park its PARK, else
    its attraction's, else the `park` of `park:poi` (graph.export.add_trips)."""
    from pyspark.sql import functions as F

    i = F.col("ITEM_ID")
    rows = trips
    if ATTRACTION in parts.vertices:
        parks = _merge_vertices(parts.vertices[ATTRACTION], ATTRACTION).select(
            F.col("~id").alias("ITEM_ID"), F.col("park").alias("_apark"))
        rows = rows.join(parks, "ITEM_ID", "left")
    else:
        rows = rows.withColumn("_apark", F.lit(None).cast("string"))
    prefix = F.when(i.contains(":"), F.substring_index(i, ":", 1))
    park = F.coalesce(F.col("PARK"), F.col("_apark"), prefix)
    per_park = (rows.withColumn("_park", park).where(F.col("_park").isNotNull())
                .groupBy("USER_ID", "_park").agg(F.countDistinct("SESSION_ID").alias("_n")))
    entry = F.concat(F.col("_park"), F.lit(PARK_TRIPS_EQ), F.col("_n").cast("string"))
    listed = per_park.groupBy("USER_ID").agg(F.array_sort(F.collect_list(F.struct("_park", entry.alias("e"))))
                                             .alias("_parks"))
    text = F.array_join(F.transform(F.col("_parks"), lambda x: x["e"]), PARK_TRIPS_SEP)
    vid = F.concat(F.lit(VISITOR.id_prefix), F.col("USER_ID"))
    visitors = None
    for df in parts.vertices.get(VISITOR, []):
        ids = df.select("~id")
        visitors = ids if visitors is None else visitors.unionByName(ids)
    if visitors is None:
        return
    found = listed.select(vid.alias("~id"), text.alias("park_trips")).join(visitors.distinct(), "~id", "left_semi")
    parts.v(VISITOR, found.select("~id", _order(9).alias("_o"), "park_trips"))


def graph_frames(spark, matched=None, sources=None, visits=None, interactions=None, items=None, recs=None,
                 model: str = "model", trips=None) -> GraphFrames:
    """Every vertex and edge the inputs give (see graph.export), as DataFrames by label. `matched`, `interactions`,
    `items`, `recs`, `trips` may be paths (a file or a directory of part files) or DataFrames (Spark; pandas for
    `interactions`, `items`, `trips`)."""

    from pyspark import StorageLevel

    parts = _Parts()
    cached = []

    def keep(df):  # read once, then reused by several labels' plans
        cached.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    try:
        return _graph_frames(spark, parts, keep, cached, matched, sources, visits, interactions, items, recs, model,
                             trips)
    except BaseException:
        GraphFrames(cached=cached).release()
        raise


def _graph_frames(spark, parts, keep, cached, matched, sources, visits, interactions, items, recs, model, trips):
    from pyspark.sql import functions as F

    src = {k: keep(v) for k, v in (read_sources(spark, sources) if sources is not None else {}).items()}
    cids = None
    if matched is not None:
        what = str(matched) if isinstance(matched, (str, Path)) else "matched"
        df = read_frame(spark, matched, "matched") if isinstance(matched, (str, Path)) else matched
        require_columns(df, MATCHED_COLUMNS, what)
        df = keep(df)
        if df.where(F.col("match_id").isNull()).limit(1).count():
            raise InputError(f"{what}: column match_id has empty values")
        cids = keep(_customers(parts, df, with_matches=True, what=what))
        _matches(parts, df)
        if isinstance(matched, (str, Path)):
            _merged_from(parts, spark, MatchOutput(matched).id_changes, df)
            _split_from(parts, spark, MatchOutput(matched).id_changes, df)
        _accounts(parts, df)
    elif src:
        customers = _merged_customers(spark, src)
        if customers is not None:
            cids = keep(_customers(parts, customers, with_matches=False, what="sources"))
    if src and cids is not None:
        _policies(parts, cids, src)
    visits_df = _visits_frame(spark, visits, interactions)
    visits_df = None if visits_df is None else keep(visits_df)
    recs_df = None
    if recs is not None:
        recs_df = read_recs(spark, recs) if isinstance(recs, (str, Path)) else recs
        require_columns(recs_df, ["USER_ID", "ITEM_ID", "RANK", "SCORE"],
                        str(recs) if isinstance(recs, (str, Path)) else "recs")
        recs_df = keep(recs_df.withColumn("_file", F.input_file_name())
                       .withColumn("_pos", F.monotonically_increasing_id()))
    items_df = _items_frame(spark, items, visits, needed=visits_df is not None or recs_df is not None)
    trips_df = None if trips is None else keep(read_trips(spark, trips))
    _visits_and_recs(parts, visits_df, items_df, recs_df, model,
                     trip_pairs=None if trips_df is None else _trip_pairs(trips_df))
    if trips_df is not None:
        _park_trips(parts, trips_df)
    return GraphFrames(
        vertices={label.name: _merge_vertices(dfs, label) for label, dfs in parts.vertices.items()},
        edges={label.name: _merge_edges(dfs, label) for label, dfs in parts.edges.items()}, cached=cached)
