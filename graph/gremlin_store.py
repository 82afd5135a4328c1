"""GraphStore over Gremlin (Apache TinkerPop Gremlin Server, Amazon Neptune), with batched upserts.

Every query and write is gremlinpython bytecode; ids and property values travel as traversal arguments
(bound values), never as Gremlin text.

Amazon Neptune: pass the cluster endpoint as `wss://<cluster-endpoint>:8182` (same DriverRemoteConnection,
same traversals; Neptune engine 1.3.x+ accepts TinkerPop 3.7 clients and supports mergeV/mergeE). With IAM
database authentication enabled, every WebSocket handshake (each connect and reconnect) carries a SigV4 signature
made at that moment (`SigningTransport`, graph.neptune_auth: botocore's default credential chain, service
`neptune-db`; settings `gremlin_iam` / `gremlin_region`). Headers in the `C360_GREMLIN_HEADERS` setting (JSON) are
sent with every handshake; one with an `Authorization` is an explicit override and nothing is signed.
Gremlin Server (ours: `c360 gremlin start`, docker-compose.yml) requires authentication: the store sends the
`gremlin_username` / `gremlin_password` settings (C360_GREMLIN_USERNAME / C360_GREMLIN_PASSWORD) as SASL PLAIN, or
`GremlinStore(url, username=..., password=...)`; use wss:// beyond a private network, as PLAIN is clear text.
Neptune's default property cardinality is `set`; re-loading the same files adds no values (identical values).
Vertices merge on (id, label); edges merge on their id alone (edge ids are unique in Neptune and in the bulk-load
CSV), with label and endpoints in the create map.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

from c360.errors import InputError
from c360.graph.neptune_csv import Element
from c360.graph.schema import (
    ADDRESS,
    COVERS,
    CUSTOMER,
    LOCATED_AT,
    MATCH,
    POLICY,
    RECOMMENDED,
    SAME_AS,
    VEHICLE,
    VISITED,
    VISITOR,
)
from c360.graph.store import (
    DEFAULT_BATCH,
    DEFAULT_WORKERS,
    SEARCH_KEYS,
    GraphStore,
    GraphUnavailable,
    StoreSpec,
    parse_spec,
)

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 3.0
FROM_SETTINGS = object()  # GremlinStore(signer=...) default: the settings decide
READ_TIMEOUT_S = 120.0


class Prepared:
    """One upsert batch whose rows are already written as GraphBinary (see GremlinStore.prepare).

    The bytes are exactly what the driver would write for the rows list, so the request on the wire is the same
    `inject(rows).unfold().mergeV/mergeE(...)` bytecode with the rows as bound data; encoding them ahead lets the
    client encode the next batch while the server executes the previous one (gremlinpython's encoder is pure
    Python and costs about as much CPU as the server's upsert)."""

    __slots__ = ("data", "edges", "size")

    def __init__(self, data: bytes, edges: bool, size: int):
        self.data, self.edges, self.size = data, edges, size


class _PreparedIO:
    """GraphBinary writer entry for Prepared: splice the encoded rows in as they are."""

    @classmethod
    def dictify(cls, obj, writer, to_extend, as_value=False, nullable=True):
        to_extend.extend(obj.data)
        return to_extend


_HEAD = struct.Struct(">BBi")  # GraphBinary fully qualified value: type code, not-null flag, int32 length/size
_STRING, _LIST, _MAP = 0x03, 0x09, 0x0A


def encode_rows(rows: list, writer=None) -> bytes:
    """GraphBinary bytes of `rows` exactly as gremlinpython's GraphBinaryWriter writes them, with a fast path for
    str / dict / list (nearly all of a batch); any other value (int, float, bool, None, T, Direction) is written by
    the driver's own writer. tests/graph/test_load.py checks the bytes are identical."""
    if writer is None:
        from gremlin_python.structure.io.graphbinaryV1 import GraphBinaryWriter

        writer = GraphBinaryWriter()
    out = bytearray()
    pack, extend = _HEAD.pack, out.extend
    memo: dict = {}  # (type, value) → bytes, for the repeated scalars and tokens (T.id, Direction.OUT, ...)

    def put(obj):
        t = type(obj)
        if t is str:
            b = obj.encode("utf-8")
            extend(pack(_STRING, 0, len(b)))
            extend(b)
        elif t is dict:
            extend(pack(_MAP, 0, len(obj)))
            for k, v in obj.items():
                put(k)
                put(v)
        elif t is list:
            extend(pack(_LIST, 0, len(obj)))
            for x in obj:
                put(x)
        else:
            try:
                key = (t, obj)
                b = memo.get(key)
            except TypeError:  # unhashable: write it as it is
                writer.to_dict(obj, out)
                return
            if b is None:
                buf = bytearray()
                writer.to_dict(obj, buf)
                b = memo[key] = bytes(buf)
            extend(b)

    put(rows)
    return bytes(out)


def _serializer():
    from gremlin_python.driver.serializer import GraphBinarySerializersV1
    from gremlin_python.structure.io.graphbinaryV1 import GraphBinaryWriter

    return GraphBinarySerializersV1(writer=GraphBinaryWriter({Prepared: _PreparedIO}))


def _signing_transport_class():
    from gremlin_python.driver.aiohttp.transport import AiohttpTransport

    class SigningTransport(AiohttpTransport):
        """The driver's WebSocket transport, with headers signed afresh for each handshake (the driver calls
        `connect` for every new or re-opened connection of its pool)."""

        def __init__(self, signer, **kwargs):
            super().__init__(**kwargs)
            self._signer = signer

        def connect(self, url, headers=None):
            fresh = self._signer.headers(url)
            if isinstance(headers, list):  # the driver allows a list of pairs
                headers = [(k, v) for k, v in headers if k.lower() not in {h.lower() for h in fresh}]
                return super().connect(url, headers + list(fresh.items()))
            return super().connect(url, {**(headers or {}), **fresh})

    return SigningTransport


def ws_url(spec: str | StoreSpec) -> str:
    """gremlin://h:p → ws://h:p/gremlin; ws(s)://h:p[/path] kept (default port 8182, default path /gremlin)."""
    s = parse_spec(spec)
    if not s.is_url or s.scheme not in ("gremlin", "ws", "wss"):
        raise InputError(f"graph store {s.text!r}: expected gremlin://HOST:PORT or wss://HOST:PORT")
    scheme = "wss" if s.scheme == "wss" else "ws"
    return f"{scheme}://{s.host}:{s.port or 8182}{s.url_path or '/gremlin'}"


def _is_connection_error(exc: BaseException) -> bool:
    import aiohttp

    if isinstance(exc, (OSError, asyncio.TimeoutError, TimeoutError, aiohttp.ClientError, GraphUnavailable)):
        return True
    from gremlin_python.driver.protocol import ConfigurationError, GremlinServerError

    if isinstance(exc, (GremlinServerError, ConfigurationError)):  # the server answered: not a connection problem
        return False
    return any(w in str(exc).lower() for w in ("connection", "closed", "transport"))


def _is_auth_error(exc: BaseException) -> bool:
    """The server refused the credentials (401) or wants some (407: the driver raises ConfigurationError)."""
    from gremlin_python.driver.protocol import ConfigurationError, GremlinServerError

    if isinstance(exc, ConfigurationError):
        return True
    return isinstance(exc, GremlinServerError) and getattr(exc, "status_code", None) in (401, 407) \
        and "authoriz" not in str(exc).lower()


def _plain(m: dict) -> dict:
    """elementMap → {"id", "label", **properties} (edges also get "from"/"to")."""
    from gremlin_python.process.traversal import Direction, T

    out = {}
    for k, v in m.items():
        if k == T.id:
            out["id"] = v
        elif k == T.label:
            out["label"] = v
        elif k == Direction.OUT:
            out["from"] = v[T.id]
        elif k == Direction.IN:
            out["to"] = v[T.id]
        else:
            out[k] = v
    return out


class GremlinStore(GraphStore):
    """Customer-360 queries and upserts through one DriverRemoteConnection."""

    def __init__(self, spec: str | StoreSpec, headers: dict | None = None, retries: int = 4, backoff_s: float = 0.5,
                 pool_size: int = DEFAULT_WORKERS, username: str | None = None, password: str | None = None,
                 signer=FROM_SETTINGS):
        """`signer`: a graph.neptune_auth.SigV4Signer that signs every handshake, None for none; by default the
        settings decide (neptune_auth.signer_for)."""
        parsed = parse_spec(spec)
        self.spec, self.url = parsed.text, ws_url(parsed)
        settings = None
        if headers is None or username is None or signer is FROM_SETTINGS:  # the deployment's settings
            from c360.settings import load_settings

            settings = load_settings()
            if headers is None:  # extra headers (C360_GREMLIN_HEADERS)
                headers = settings.gremlin_headers
            if username is None:  # SASL PLAIN for Gremlin Server's authenticator
                username, password = settings.gremlin_username, settings.gremlin_password
        if signer is FROM_SETTINGS:
            from c360.graph.neptune_auth import signer_for

            signer = signer_for(self.url, headers, settings.gremlin_iam, settings.gremlin_region)
        self.signer = signer
        self.headers = dict(headers) if headers else None  # a copy: the driver adds its User-Agent to it
        self._username, self._password = username or "", password or ""
        self.retries, self.backoff_s, self.pool_size = retries, backoff_s, pool_size
        self._conn = None
        self._g = None
        self._connect()

    @classmethod
    def from_spec(cls, spec: StoreSpec, *, current_dir: Path | None = None, settings=None,
                  create: bool = False) -> GremlinStore:
        """gremlin://HOST:PORT, ws://HOST:PORT[/PATH] or wss://HOST:PORT[/PATH]; headers and credentials from
        `settings` (default: load_settings())."""
        if settings is None:
            return cls(spec)
        from c360.graph.neptune_auth import signer_for

        url = ws_url(spec)
        return cls(spec, headers=settings.gremlin_headers, username=settings.gremlin_username or "",
                   password=settings.gremlin_password,
                   signer=signer_for(url, settings.gremlin_headers, settings.gremlin_iam, settings.gremlin_region))

    # ---- connection -------------------------------------------------------------------------------
    def _connect(self) -> None:
        u = urlparse(self.url)
        try:  # fail fast: a server that is down must not hang the caller
            socket.create_connection((u.hostname, u.port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise GraphUnavailable(f"Gremlin server {self.spec} is not reachable: {exc}") from exc
        from gremlin_python.driver.aiohttp.transport import AiohttpTransport
        from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
        from gremlin_python.process.anonymous_traversal import traversal

        try:  # inside a running event loop (Jupyter) the driver needs nest_asyncio, which the transport applies
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        options = dict(call_from_event_loop=in_loop or None, read_timeout=READ_TIMEOUT_S, write_timeout=READ_TIMEOUT_S,
                       timeout=CONNECT_TIMEOUT_S * 10, max_content_length=64 * 1024 * 1024)
        if self.signer is None:
            transport = AiohttpTransport
        else:  # Neptune IAM: every handshake signed when it is made
            transport = functools.partial(_signing_transport_class(), self.signer)
        try:
            self._conn = DriverRemoteConnection(
                self.url, "g", headers=self.headers, pool_size=self.pool_size, message_serializer=_serializer(),
                username=self._username, password=self._password,
                transport_factory=lambda: transport(**options))
        except Exception as exc:
            raise GraphUnavailable(f"Gremlin server {self.spec}: cannot connect: {exc}") from exc
        self._g = traversal().with_remote(self._conn)
        self._client = self._conn._client if hasattr(self._conn, "_client") else None

    def _submit(self, t) -> list:
        """Send a traversal's bytecode and return its results (skips the driver's per-request debug rendering)."""
        from gremlin_python.process.traversal import Traverser

        if self._client is None:
            return t.to_list()
        return [r.object if isinstance(r, Traverser) else r for r in self._client.submit(t.bytecode).all().result()]

    def close(self) -> None:
        """Close the connection pool (a later call reconnects)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def _call(self, fn: Callable, what: str):
        """Run fn(g); on connection errors reconnect and retry with exponential backoff, then GraphUnavailable."""
        for attempt in range(self.retries + 1):
            try:
                if self._g is None:
                    self._connect()
                return fn(self._g)
            except Exception as exc:
                if _is_auth_error(exc):
                    raise GraphUnavailable(f"Gremlin server {self.spec} refused the connection's credentials (the "
                                           f"gremlin_username / gremlin_password settings, C360_GREMLIN_USERNAME / "
                                           f"C360_GREMLIN_PASSWORD): {exc}") from exc
                if not _is_connection_error(exc):
                    raise
                if attempt == self.retries:
                    raise GraphUnavailable(f"Gremlin server {self.spec}: {what} failed after "
                                           f"{self.retries + 1} attempts: {exc}") from exc
                wait = self.backoff_s * 2 ** attempt
                log.warning("gremlin %s: %s; retrying in %.1fs", what, exc, wait)
                self.close()
                self._g = None
                time.sleep(wait)

    def traversal_source(self):
        """The gremlinpython GraphTraversalSource `g` on this store's connection (its credentials, headers and
        Neptune signing), for raw traversals (the exploration notebook); they are not retried as the store's own
        queries are."""
        if self._g is None:
            self._connect()
        return self._g

    def ping(self) -> bool:
        """True when a round trip (g.inject(1)) answers."""
        try:
            return self._call(lambda g: g.inject(1).next(), "ping") == 1
        except Exception:
            return False

    # ---- writes -----------------------------------------------------------------------------------
    def upsert(self, vertices: list[Element], edges: list[Element], *, batch_size: int = DEFAULT_BATCH,
               workers: int = DEFAULT_WORKERS, progress: bool | None = None) -> None:
        """Vertices, then edges, `batch_size` elements per traversal. Vertex batches go `workers` at a time. Edge
        batches go one at a time, because TinkerGraph's per-vertex edge sets are not safe under concurrent writes
        (parallel edge batches corrupt them) and TinkerTransactionGraph rejects them as conflicting transactions;
        instead the client encodes the next `workers` edge batches while the server executes the current one.
        batch_size 1 sends one mergeV/mergeE per element; progress None shows a bar on a terminal only."""
        from tqdm import tqdm

        if batch_size < 1:
            raise InputError(f"--batch-size: must be at least 1 (got {batch_size})")
        if workers < 1:
            raise InputError(f"--workers: must be at least 1 (got {workers})")
        if workers > self.pool_size:  # one connection per vertex batch in flight, or the extra workers just wait
            self.close()
            self.pool_size = workers
            self._connect()  # now, before the worker threads share it
        disable = None if progress is None else not progress
        with tqdm(total=len(vertices) + len(edges), unit="el", desc="graph load", disable=disable) as bar:
            if batch_size == 1:
                for v in vertices:
                    self.upsert_vertex(v)
                    bar.update(1)
                for e in edges:
                    self.upsert_edge(e)
                    bar.update(1)
                return
            with ThreadPoolExecutor(workers) as pool:
                batches = [vertices[i:i + batch_size] for i in range(0, len(vertices), batch_size)]
                for fut, b in zip([pool.submit(self.upsert_vertices, b) for b in batches], batches, strict=True):
                    fut.result()  # all vertices exist before the first edge is sent
                    bar.update(len(b))
            with ThreadPoolExecutor(1) as encoder:  # edges: encode ahead, send in order, one in flight
                ahead: deque = deque()
                for i in [*range(0, len(edges), batch_size), None]:  # None: flush what is still ahead
                    if i is not None:
                        ahead.append(encoder.submit(self.prepare, edges[i:i + batch_size], True))
                    while len(ahead) > (workers if i is not None else 0):
                        prepared = ahead.popleft().result()
                        self.upsert_prepared(prepared)
                        bar.update(prepared.size)

    def drop_all(self) -> None:
        """Remove every vertex (and so every edge)."""
        self._call(lambda g: g.V().drop().iterate(), "drop")

    def _drop_same_as(self, record_vertices: list[str]) -> None:
        if record_vertices:
            self._call(lambda g: g.V(*record_vertices).out_e(SAME_AS.name).drop().iterate(), "relink")

    @staticmethod
    def _vertex_rows(batch: list[Element]) -> list[dict]:
        from gremlin_python.process.traversal import T

        return [{"k": {T.id: v.id, T.label: v.label}, "p": dict(v.props)} for v in batch]

    @staticmethod
    def _edge_rows(batch: list[Element]) -> list[dict]:
        """Edges merge on their id alone (edge ids are unique in a graph, as in Neptune and the bulk-load CSV);
        label and endpoints go in the create map. Matching on id + label + endpoints costs the server two extra
        sub-traversals per edge, about a third of its edge upsert time."""
        from gremlin_python.process.traversal import Direction, T

        return [{"k": {T.id: e.id}, "c": {T.label: e.label, Direction.OUT: e.frm, Direction.IN: e.to, **e.props},
                 "p": dict(e.props)} for e in batch]

    def _merge(self, g, rows, edges: bool):
        """One traversal upserting every row: merge on row["k"], create with row["c"] (edges) or row["p"]
        (vertices, whose id and label are in the key), set row["p"] on match."""
        from gremlin_python.process.graph_traversal import __
        from gremlin_python.process.traversal import Merge

        t = g.inject(rows).unfold()
        t = t.merge_e(__.select("k")) if edges else t.merge_v(__.select("k"))
        return t.option(Merge.on_create, __.select("c" if edges else "p")).option(Merge.on_match, __.select("p")).count()

    def prepare(self, batch: list[Element], edges: bool) -> Prepared:
        """Encode a batch's rows to GraphBinary now (any thread); send it later with upsert_prepared."""
        rows = self._edge_rows(batch) if edges else self._vertex_rows(batch)
        return Prepared(encode_rows(rows), edges, len(batch))

    def upsert_prepared(self, p: Prepared) -> int:
        """Send one prepared batch (one traversal); retried like every call. Returns the rows merged."""
        if not p.size:
            return 0
        return self._call(lambda g: self._submit(self._merge(g, p, edges=p.edges))[0],
                          "edge upsert" if p.edges else "vertex upsert")

    def upsert_vertices(self, batch: list[Element]) -> int:
        """mergeV a batch in one traversal: match on (id, label), create with properties, update on match."""
        return self.upsert_prepared(self.prepare(batch, edges=False))

    def upsert_edges(self, batch: list[Element]) -> int:
        """mergeE a batch in one traversal: match on id, create with label, endpoints and properties."""
        return self.upsert_prepared(self.prepare(batch, edges=True))

    def upsert_vertex(self, v: Element) -> None:
        """One element per traversal (the unbatched path, for comparison)."""
        from gremlin_python.process.traversal import Merge, T

        self._call(lambda g: g.merge_v({T.id: v.id, T.label: v.label}).option(Merge.on_create, dict(v.props))
                   .option(Merge.on_match, dict(v.props)).iterate(), "vertex upsert")

    def upsert_edge(self, e: Element) -> None:
        """One edge per traversal (the unbatched path, for comparison)."""
        from gremlin_python.process.traversal import Direction, Merge, T

        self._call(lambda g: g.merge_e({T.id: e.id})
                   .option(Merge.on_create, {T.label: e.label, Direction.OUT: e.frm, Direction.IN: e.to, **e.props})
                   .option(Merge.on_match, dict(e.props)).iterate(), "edge upsert")

    # ---- raw queries ------------------------------------------------------------------------------
    @staticmethod
    def _edges(label: str):
        """A visitor's out-edges of `label` as [{"e": edge properties, "a": the attraction's elementMap}]."""
        from gremlin_python.process.graph_traversal import __

        return __.out_e(label).project("e", "a").by(__.value_map()).by(__.in_v().element_map()).fold()

    @classmethod
    def _accounts(cls):
        """From a match: its visitors (park accounts) with their visited and recommended edges."""
        from gremlin_python.process.graph_traversal import __

        return (__.in_(SAME_AS.name).has_label(VISITOR.name).dedup()
                .project("v", "visits", "recs").by(__.element_map())
                .by(cls._edges(VISITED.name)).by(cls._edges(RECOMMENDED.name)).fold())

    @staticmethod
    def _account_rows(found: list) -> list[dict]:
        return [{"v": _plain(r["v"]), "visits": [(r_["e"], _plain(r_["a"])) for r_ in r["visits"]],
                 "recs": [(r_["e"], _plain(r_["a"])) for r_ in r["recs"]]} for r in found]

    def _customer360_rows(self, match_id: str) -> dict | None:
        from gremlin_python.process.graph_traversal import __

        def q(g):
            return (g.V(match_id).has_label(MATCH.name)
                    .project("rows", "accounts").by(
                        __.in_(SAME_AS.name).has_label(CUSTOMER.name).dedup()
                        .project("c", "addresses", "policies")
                        .by(__.element_map())
                        .by(__.out(LOCATED_AT.name).has_label(ADDRESS.name).dedup().element_map().fold())
                        .by(__.out(COVERS.name).has_label(POLICY.name).dedup()
                            .project("p", "addresses", "vehicles")
                            .by(__.element_map())
                            .by(__.out(LOCATED_AT.name).has_label(ADDRESS.name).dedup().element_map().fold())
                            .by(__.out(COVERS.name).has_label(VEHICLE.name).dedup().element_map().fold())
                            .fold())
                        .fold())
                    .by(self._accounts())
                    .to_list())

        res = self._call(q, "customer360")
        if not res:
            return None
        customers = [{"c": _plain(r["c"]), "addresses": [_plain(a) for a in r["addresses"]],
                      "policies": [{"p": _plain(p["p"]), "addresses": [_plain(a) for a in p["addresses"]],
                                    "vehicles": [_plain(v) for v in p["vehicles"]]} for p in r["policies"]]}
                     for r in res[0]["rows"]]
        return {"customers": customers, "accounts": self._account_rows(res[0]["accounts"])}

    def _accounts_rows(self, match_id: str) -> list[dict] | None:
        res = self._call(lambda g: g.V(match_id).has_label(MATCH.name).project("accounts").by(self._accounts())
                         .to_list(), "recommendations")
        return None if not res else self._account_rows(res[0]["accounts"])

    def _search_rows(self, last_name_lc: str, first_name_lc: str | None, date_of_birth: str | None) -> list[dict]:
        from gremlin_python.process.graph_traversal import __

        last_key, first_key, dob_key = SEARCH_KEYS

        def q(g):
            t = g.V().has(CUSTOMER.name, last_key, last_name_lc)
            if first_name_lc is not None:
                t = t.has(first_key, first_name_lc)
            if date_of_birth is not None:
                t = t.has(dob_key, date_of_birth)
            return (t.as_("c").out(SAME_AS.name).has_label(MATCH.name)
                    .project("c", "match_id", "records")
                    .by(__.select("c").element_map()).by(__.id_())
                    .by(__.in_(SAME_AS.name).has_label(CUSTOMER.name).dedup().count())
                    .to_list())

        return [{"c": _plain(r["c"]), "match_id": r["match_id"], "records": r["records"]}
                for r in self._call(q, "search")]

    def _visitor_rows(self, vertex_id: str):
        from gremlin_python.process.graph_traversal import __

        res = self._call(lambda g: g.V(vertex_id).has_label(VISITOR.name).project("visits", "recs", "matches")
                         .by(self._edges(VISITED.name)).by(self._edges(RECOMMENDED.name))
                         .by(__.out(SAME_AS.name).has_label(MATCH.name).dedup().id_().fold()).to_list(), "visitor")
        if not res:
            return None
        return ([(r["e"], _plain(r["a"])) for r in res[0]["visits"]],
                [(r["e"], _plain(r["a"])) for r in res[0]["recs"]], sorted(str(m) for m in res[0]["matches"]))

    def _neighbourhood_rows(self, vertex_id: str, depth: int) -> tuple[list[dict], list[dict]]:
        from gremlin_python.process.graph_traversal import __
        from gremlin_python.process.traversal import P

        if not self._call(lambda g: g.V(vertex_id).id_().to_list(), "neighbourhood"):
            return [], []
        seen, frontier = {vertex_id}, [vertex_id]
        for _ in range(depth):
            if not frontier:
                break
            nxt = set(self._call(lambda g, f=frontier: g.V(*f).both().dedup().id_().to_list(), "neighbourhood"))
            frontier = sorted(nxt - seen)
            seen |= nxt
        ids = sorted(seen)
        vertices = self._call(lambda g: g.V(*ids).element_map().to_list(), "neighbourhood")
        edges = self._call(lambda g: g.V(*ids).out_e().where(__.in_v().has_id(P.within(ids))).element_map().to_list(),
                           "neighbourhood")
        return [_plain(v) for v in vertices], [_plain(e) for e in edges]

    def _vertex_ids(self, label: str) -> list[str]:
        return self._call(lambda g: g.V().has_label(label).id_().to_list(), "vertex_ids")

    def _label_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        from gremlin_python.process.traversal import T

        return (self._call(lambda g: g.V().group_count().by(T.label).next(), "counts"),
                self._call(lambda g: g.E().group_count().by(T.label).next(), "counts"))
