"""One typed settings object: defaults here, a YAML config file over them, C360_* environment variables over that.

Every environment variable the product reads is in `ENV_VARS`, and every default of the nightly, the matcher,
the recommenders, the graph load, the gates and the API is a field below: no other module reads `os.environ`
for a setting or repeats a default.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from c360.errors import InputError
from c360.events import EventBounds
from c360.io import read_yaml_file

# writer: reader + the endpoints that write (POST /events, commits); steward: reader + the review queue
ROLES = ("reader", "pii", "writer", "steward")


def parse_api_keys(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse `key:role,key:role` (or a mapping) into {key: role}; roles are reader, pii, writer or steward."""
    if not spec:
        return {}
    pairs = spec.items() if isinstance(spec, Mapping) else (
        item.split(":", 1) if ":" in item else (item, "")
        for item in (s.strip() for s in str(spec).split(",")) if item
    )
    keys: dict[str, str] = {}
    for n, (key, role) in enumerate(pairs, start=1):
        key, role = str(key).strip(), str(role).strip()
        if not key or role not in ROLES:  # never echo the entry: a key, or a key typed where the role goes, is secret
            raise InputError(f"C360_API_KEYS: entry {n} must be key:role with role in {', '.join(ROLES)} "
                             f"(found {'an empty key' if not key else 'an unknown role' if role else 'no role'})")
        keys[key] = role
    return keys


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AccountsSettings(_Section):
    """A user's accounts table (app accounts of another system: records of people, matched with the insurance
    records): the file and its columns under their merged names (id, first_name, last_name, date_of_birth, email,
    home_phone, zip, ...). Its ids are the visits' USER_IDs. Its rows are park accounts (`source` park): what the
    match attaches to the insurance records' people, the graph's account vertices and the shared histories."""

    file: str
    columns: dict[str, str]                 # merged name -> the file's column


class NightlySettings(_Section):
    """Inputs of `c360 nightly`."""

    visits: str | None = None               # sigir17 directory or Personalize interactions file; None = shipped data
    visits_format: Literal["sigir17", "personalize"] | None = None   # None: sigir17 for a directory, else personalize
    items: str | None = None                # Personalize items file (sigir17 brings its own POI lists)
    insurance: str | None = None            # directory of the five source tables; None = generated into the warehouse
    generate_customers: int = Field(2000, gt=0)   # size of the generated insurance data (people)
    # generated insurance data also gets park accounts for the visitors of the (sigir17) visits, and the nightly then
    # trains on those visits keyed by account; `generate_visitors`: only that many visitors, drawn at random
    generate_accounts: bool = True
    generate_visitors: int | None = Field(None, gt=0)
    accounts: AccountsSettings | None = None   # a user's accounts table (default: the insurance dir's park_accounts)
    seed: int = 0


class ERSettings(_Section):
    """The nightly's match step."""

    engine: Literal["spark", "duckdb"] = "spark"
    config: str | None = None               # roles.yaml; None = the insurance preset
    # match probability that links two records into one cluster; None: the config's (auto: best F1 on the labels,
    # else the model's expected F1, its prior recalibrated at the match-weight valley)
    threshold: float | None = Field(None, gt=0, lt=1)
    labels: list[str] = []                  # FindMatches-style labeling files
    # labeling sets the run draws for the API's review queue (c360 er review; stewards answer them between
    # nightlies, and the next run trains on the answers); 0: no queue
    review_sets: int = Field(50, ge=0, le=5000)


class RecsysSettings(_Section):
    """The nightly's recommenders: which are evaluated and trained, which is served, and how they are judged."""

    algorithms: list[str] = ["popularity", "item-knn", "als", "spark-als", "fm"]
    serve: str = "auto"                     # an algorithm name, or auto (chosen on a validation split)
    baseline: str = "popularity"            # the gate compares the served model with this one
    item_group_col: str | None = "PARK"
    k: int = Field(10, gt=0)
    top_n: int = Field(20, gt=0)            # recommendations per user in recs.csv
    holdout: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    # the session model (next attraction from the trip so far): evaluated time-ordered, trained, gated
    session: bool = True
    session_protocol: Literal["next-trip", "next-item"] = "next-trip"
    session_k: int = Field(5, gt=0)                 # its gate and report read hit@<session_k>
    session_min_ratio: float = Field(1.0, ge=0)     # session hit@k >= baseline hit@k x this, same protocol
    session_gap_minutes: float = Field(480.0, gt=0)   # trips without SESSION_ID end after this long without events
    session_params: dict[str, Any] = {}             # SessionModel parameters, e.g. {model: gbm}
    # match: the accounts the run's match joins share one history (c360.recsys.identities); none: per account
    identities: Literal["match", "none"] = "match"

    @property
    def ndcg(self) -> str:
        """The metric the gate and the report read: ndcg@<k>."""
        return f"ndcg@{self.k}"

    @property
    def session_metric(self) -> str:
        """The metric the session gate and the report read: hit@<session_k>."""
        return f"hit@{self.session_k}"

    def all_algorithms(self) -> list[str]:
        """The configured algorithms plus the baseline and the served one, each once, in order."""
        return list(dict.fromkeys([*self.algorithms, self.baseline, self.serve]))


# the forms of NeptuneLoaderSettings' names: (pattern, what the error says)
_LOADER_FORMS = {"s3_prefix": (r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", "s3://BUCKET[/PREFIX]"),
                 "iam_role_arn": (r"arn:aws[a-z-]*:iam::\d{12}:role/\S+", "an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME")}


class NeptuneLoaderSettings(_Section):
    """Amazon Neptune's bulk loader for the nightly's graph (c360.graph.neptune_loader): on when `s3_prefix` and
    `iam_role_arn` are set. Then an export of at least `min_elements` vertices and edges is uploaded under
    `<s3_prefix>/<run id>/` and loaded with `POST /loader` instead of Gremlin upserts."""

    s3_prefix: str | None = None            # s3://BUCKET[/PREFIX] (C360_NEPTUNE_S3_PREFIX)
    iam_role_arn: str | None = None         # the role the cluster reads the bucket with (C360_NEPTUNE_IAM_ROLE_ARN)
    # the bucket's and cluster's region (C360_NEPTUNE_REGION); None: gremlin_region, else botocore's, else the
    # endpoint's name
    region: str | None = None
    # the loader API, https://HOST:PORT (C360_NEPTUNE_LOADER_ENDPOINT); None: graph.store's wss://HOST:PORT
    endpoint: str | None = None
    # smaller exports are upserted through Gremlin: ~17,000 elements/s measured into a Gremlin Server
    # (benchmarks/results/graph.md), so a million is about a minute, the order of an upload plus a queued load job
    min_elements: int = Field(1_000_000, ge=0)
    parallelism: Literal["LOW", "MEDIUM", "HIGH", "OVERSUBSCRIBE"] = "HIGH"
    poll_interval_s: float = Field(10.0, gt=0)        # between two GET /loader/{loadId}
    timeout_s: float = Field(6 * 3600.0, gt=0)        # a load not ended by then fails the step (it keeps running)
    s3_endpoint_url: str | None = None      # an S3-compatible server instead of AWS's S3 (tests)

    @field_validator("s3_prefix", "iam_role_arn")
    @classmethod
    def _form(cls, value, info):
        pattern, form = _LOADER_FORMS[info.field_name]
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(f"must be {form}")
        return value

    @property
    def configured(self) -> bool:
        """True when the nightly may hand its graph to the loader (both the prefix and the role are set)."""
        return bool(self.s3_prefix and self.iam_role_arn)


class GraphSettings(_Section):
    """Where the graph lives (C360_GRAPH) and how the nightly loads it."""

    store: str = "networkx"                 # networkx | networkx:PATH | gremlin://HOST:PORT | wss://HOST:PORT
    drop_before_load: bool = False          # true: full reload of a shared Gremlin store (drop, then load)
    # how the nightly computes the Neptune CSVs: spark (distributed; nothing but counts reaches the driver) or local
    # (in the driver's memory, no Spark jobs: for runs small enough to hold the graph in one process)
    export_engine: Literal["spark", "local"] = "spark"
    neptune_loader: NeptuneLoaderSettings = NeptuneLoaderSettings()


class GatesSettings(_Section):
    """Quality gates: a run is published only when every one passes."""

    er_f1_min: float = Field(0.9, ge=0)          # pairwise F1 on labels, or on the truth when present
    er_accounts_f1_min: float = Field(0.9, ge=0)   # pairwise F1 of the pairs with an account, on the truth
    recsys_min_ratio: float = Field(1.0, ge=0)   # served ndcg@k >= baseline ndcg@k x this
    graph_counts: bool = True                    # vertex/edge counts by label in the store equal those exported


class RateLimit(_Section):
    """Requests of one API key to one endpoint group: `per_second` sustained, up to `burst` at once, at most
    `per_day` per UTC day (None: no daily quota)."""

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)
    per_day: int | None = Field(None, gt=0)


# the defaults of api.rate_limits: lookup = GET /customer360/{id} and /customers/search, match = POST
# /customers/match, events = POST /events (up to realtime.max_events each); enough for a busy front end on one key,
# while a leaked key reads at most `per_day` customers a day (per worker), and a writer guessing a whole SSN (the
# only answer left to a caller without pii: equal or not) needs 10^5 guesses, five days of the match quota
RATE_LIMITS: dict[str, dict[str, Any]] = {
    "lookup": {"per_second": 20.0, "burst": 100, "per_day": 20_000},
    "match": {"per_second": 10.0, "burst": 50, "per_day": 20_000},
    "events": {"per_second": 50.0, "burst": 200, "per_day": None},
    # GET /metrics: a scraper every few seconds, a person at a terminal; a scrape reads every worker's files
    "metrics": {"per_second": 1.0, "burst": 10, "per_day": None},
    # GET /review/next and POST /review/decisions: a person answering by keyboard, a few sets a second at most;
    # each answer shows a set's records, so the day's quota bounds what a leaked steward key reads
    "review": {"per_second": 5.0, "burst": 20, "per_day": 5_000},
    # GET /recommendations/{user_id} with a key (the visitor's live events, their person's match_id): a front end
    # asking for its visitors as they move; the day's quota bounds how many accounts a leaked key maps onto persons
    # (per worker): a deployment with fewer accounts than that, whose front end needs less, lowers it
    "recommendations": {"per_second": 50.0, "burst": 200, "per_day": 200_000},
}


class ApiSettings(_Section):
    """The HTTP service."""

    reload_interval: float = Field(1.0, gt=0)    # seconds between checks of warehouse/current
    cors_origins: list[str] = []                 # CORS stays closed unless origins are listed
    docs: bool = False                           # serve /docs, /redoc and /openapi.json (closed by default)
    # connection limits of `c360 serve` (c360.api.server); the reverse proxy in front has its own, tighter ones
    max_header_bytes: int = Field(16384, ge=1024)   # request line + headers; a larger head is answered 431
    header_timeout_s: float = Field(10.0, gt=0)     # a request head (or a new connection's first one) must be
                                                    # complete within this, else the connection is closed (408)
    keep_alive_s: float = Field(5.0, gt=0)          # idle keep-alive connections are closed after this
    limit_concurrency: int | None = Field(1000, gt=0)   # connections (or running requests) beyond this: 503;
                                                        # None: unlimited
    body_timeout_s: float = Field(10.0, gt=0)       # a request body must be complete within this of the end of its
                                                    # head, else 408 and the connection is closed
    # a request body over this is answered 413 (by its Content-Length, or as it streams in); the largest
    # POST /events (realtime.max_events of the longest events) is about 0.5 MiB
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # per API key (c360.api.limits): a token bucket per endpoint group, and a quota per UTC day; 429 + Retry-After.
    # A group given in part keeps the defaults of the rest (RATE_LIMITS); per worker process
    rate_limits: dict[Literal["lookup", "match", "events", "metrics", "review", "recommendations"], RateLimit] = (
        Field(default_factory=dict, validate_default=True))
    log_level: Literal["debug", "info", "warning", "error"] = "info"   # of every worker's JSON logs

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _rate_limits(cls, value):
        out: dict[Any, Any] = {group: dict(limit) for group, limit in RATE_LIMITS.items()}
        for group, limit in dict(value or {}).items():
            limit = limit.model_dump() if isinstance(limit, BaseModel) else limit
            out[group] = {**out.get(group, {}), **limit} if isinstance(limit, Mapping) else limit
        return out


class RealtimeSettings(_Section):
    """What the API accepts between two nightly runs: POST /events and POST /customers/match (its logs live under
    the warehouse, c360.layout.Warehouse)."""

    max_events: int = Field(1000, gt=0)          # events in one POST /events; more: 422
    candidates: int = Field(5, gt=0)             # candidate match_ids POST /customers/match returns at most
    min_match_fields: int = Field(3, ge=1)       # compared fields a record to match must give (fewer: 422)
    # what one event may be (c360.events.EventBounds): its timestamp within [now - age, now + skew], its value
    max_event_age_s: float = Field(30 * 86400, gt=0)
    max_clock_skew_s: float = Field(300.0, ge=0)
    max_event_value: float = Field(100.0, gt=0)
    # intake quotas: events of one user per window (more: 429 with Retry-After), distinct users in one request
    # (more: 422; one request of many fake users moved an attraction up every cold-start list), and events in the
    # log since the published run (more: 507 until the next nightly; bounds the log and every worker's memory)
    max_user_events: int = Field(500, gt=0)
    user_window_s: float = Field(3600.0, gt=0)
    max_request_users: int = Field(50, gt=0)
    max_pending_events: int = Field(200_000, gt=0)
    # ... of them posted with one API key (more: 507 for that key): one key, leaked or looping, cannot fill the log
    # and stop every other writer until the nightly
    max_pending_per_key: int = Field(100_000, gt=0)
    trip_visits: int = Field(256, gt=0)          # latest visits each worker keeps per user for the current trip
    # a blocking key shared by more records than this pairs nothing in real time (too common to discriminate: a
    # shared phone, a placeholder SSN); other keys still find the record's candidates
    max_block_size: int = Field(200, gt=0)
    # where the logs live (c360.realtime_log): `file` (append-only files under the warehouse, every worker of one
    # host) or `kafka://HOST:PORT/TOPIC` (events on TOPIC, committed customers on TOPIC-customers: every host)
    log: str = "file"
    log_timeout_s: float = Field(5.0, gt=0)      # an append the broker has not acknowledged by then: 503
    # a compacted topic (customers) compacts no record younger than this (the topic's min.compaction.lag.ms, set when
    # it is created): keep it well above the longest time between two published nightlies (c360.kafka_log)
    log_compaction_lag_s: float = Field(7 * 86400.0, gt=0)

    @field_validator("log")
    @classmethod
    def _log_spec(cls, value: str) -> str:
        from c360.log_contract import parse_log_spec

        try:
            return parse_log_spec(value).text
        except InputError as exc:  # pydantic names the setting: realtime.log
            raise ValueError(str(exc).removeprefix("realtime.log ")) from None

    def bounds(self) -> EventBounds:
        """The accepted range of an event (c360.events)."""
        return EventBounds(self.max_event_age_s, self.max_clock_skew_s, self.max_event_value)


class Settings(_Section):
    """Everything configurable, typed; sections mirror the YAML file's top-level keys."""

    warehouse: Path = Path("./warehouse")
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = {}
    api_keys: dict[str, str] = {}
    gremlin_headers: dict[str, str] = {}    # extra WebSocket headers (with an Authorization: sent as is, unsigned)
    gremlin_iam: bool | None = None         # Neptune IAM, every handshake SigV4-signed; None: *.neptune.amazonaws.com
    gremlin_region: str | None = None       # the signature's region (default: botocore's, else the endpoint's name)
    gremlin_username: str | None = None     # credentials of the Gremlin Server's authenticator (SASL PLAIN)
    gremlin_password: str | None = Field(None, repr=False)
    cache: Path = Path.home() / ".cache" / "c360"   # Gremlin Server jars and other downloads
    nightly: NightlySettings = NightlySettings()
    er: ERSettings = ERSettings()
    recsys: RecsysSettings = RecsysSettings()
    graph: GraphSettings = GraphSettings()
    gates: GatesSettings = GatesSettings()
    api: ApiSettings = ApiSettings()
    realtime: RealtimeSettings = RealtimeSettings()
    source: str | None = Field(None, exclude=True)   # the config file these came from

    @field_validator("graph", mode="before")
    @classmethod
    def _store_spec(cls, value):
        return {"store": value} if isinstance(value, str) else value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value):
        return parse_api_keys(value)

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _conf(cls, value):
        return {str(k): str(v) for k, v in dict(value or {}).items()}

    def sections(self) -> dict[str, Any]:
        """The nightly's configuration as plain data, recorded in each run's manifest (where the graph lives is
        the deployment's, not the run's: a resumed run loads into the store configured now)."""
        return self.model_dump(mode="json", include={"nightly", "er", "recsys", "graph", "gates"},
                               exclude={"graph": {"store", "neptune_loader"}})

    def with_sections(self, sections: Mapping[str, Any], source: str = "settings") -> "Settings":
        """These settings with `sections` (as `sections()` wrote them) laid over them."""
        return build_settings(_merge(self.model_dump(), dict(sections)), source)


# environment variable -> path of the setting it overrides (the only environment variables c360 reads)
ENV_VARS: dict[str, tuple[str, ...]] = {
    "C360_WAREHOUSE": ("warehouse",),
    "C360_SPARK_MASTER": ("spark_master",),
    "C360_GRAPH": ("graph", "store"),
    "C360_API_KEYS": ("api_keys",),
    "C360_GREMLIN_HEADERS": ("gremlin_headers",),   # JSON object
    "C360_GREMLIN_IAM": ("gremlin_iam",),
    "C360_GREMLIN_REGION": ("gremlin_region",),
    "C360_GREMLIN_USERNAME": ("gremlin_username",),
    "C360_GREMLIN_PASSWORD": ("gremlin_password",),
    "C360_CACHE": ("cache",),
    "C360_LOG_LEVEL": ("api", "log_level"),   # `c360 serve --log-level` hands it to its workers
    "C360_REALTIME_LOG": ("realtime", "log"),   # file | kafka://HOST:PORT/TOPIC
    "C360_NEPTUNE_S3_PREFIX": ("graph", "neptune_loader", "s3_prefix"),
    "C360_NEPTUNE_IAM_ROLE_ARN": ("graph", "neptune_loader", "iam_role_arn"),
    "C360_NEPTUNE_REGION": ("graph", "neptune_loader", "region"),
    "C360_NEPTUNE_LOADER_ENDPOINT": ("graph", "neptune_loader", "endpoint"),
}
CONFIG_ENV = "C360_CONFIG"   # the YAML file `c360 serve` hands to its workers


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var, path in ENV_VARS.items():
        value = env.get(var)
        if not value:
            continue
        if var == "C360_GREMLIN_HEADERS":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InputError(f"{var}: must be a JSON object of header names and values ({exc})") from exc
            if not isinstance(value, dict):
                raise InputError(f"{var}: must be a JSON object of header names and values")
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _describe(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return f"{source}: " + "; ".join(parts)


def build_settings(values: Mapping[str, Any], source: str = "settings") -> Settings:
    """Settings from plain values (a parsed YAML file, overrides); InputError naming the setting at fault."""
    try:
        return Settings.model_validate(dict(values))
    except ValidationError as exc:
        raise InputError(_describe(exc, source)) from None


def load_settings(config: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults ← `config` (YAML, optional; default: $C360_CONFIG) ← C360_* variables of `env` ← `overrides`."""
    env = os.environ if env is None else env
    config = config or env.get(CONFIG_ENV) or None
    raw: dict[str, Any] = {}
    if config:
        raw = read_yaml_file(Path(config), "config file not found")
        if not isinstance(raw, dict):
            raise InputError(f"{config}: top level must be a mapping")
    raw = _merge(_merge(raw, _env_overrides(env)), dict(overrides or {}))
    settings = build_settings(raw, str(config) if config else "settings")
    settings.source = str(config) if config else None
    return settings
