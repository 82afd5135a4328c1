"""Pydantic request and response models (with examples for the OpenAPI docs)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictFloat, StrictInt, Tag, create_model

from c360.entity_resolution.config import KNOWN_ROLES
from c360.events import ID_MAX_LENGTH, ID_PATTERN


class Error(BaseModel):
    """Every error body."""

    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["match_id '999' not found"])
    fields: list[str] | None = Field(default=None, examples=[["k"]])


class RecommendedItem(BaseModel):
    item_id: str = Field(examples=["epcot:12"])
    name: str | None = Field(examples=["Spaceship Earth"])
    score: float = Field(examples=[0.83])
    rank: int = Field(examples=[1])


class TripSession(BaseModel):
    items: list[str] = Field(description="the trip's attractions from the events posted, in the order first visited",
                             examples=[["epcot:12", "epcot:14"]])
    events: int = Field(description="events of the trip", examples=[2])


class TripContext(BaseModel):
    """What a trip-aware answer was scored from: the visitor's current trip and where they stand now."""

    session: TripSession | None = Field(None, description="the current trip from POST /events; null: none, or "
                                                          "the request has no API key")
    at: str | None = Field(None, description="?at=: the attraction the visitor stands at now", examples=["epcot:14"])
    park: str | None = Field(None, description="set with `note`: the park the items were restricted to")
    note: str | None = Field(None, description="set when the session model does not know the trip's park: the "
                                               "served model answered, restricted to that park")


class Identity(BaseModel):
    """The person an account belongs to, when the person has other app accounts (entity resolution joined them)."""

    match_id: str = Field(description="the person's match_id (GET /customer360/{match_id}); the whole identity is "
                                      "null without an API key", examples=["17"])
    accounts: list[str] | None = Field(None, description="the person's account ids, this one first: role pii only, "
                                                         "null for any other caller",
                                       examples=[["10007579@N00", "acct-0000017"]])
    account_count: int = Field(description="how many app accounts the person has", examples=[2])


class Recommendations(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [{
        "user_id": "10007579@N00", "model": "als", "model_version": "20261122T010000Z:als", "cold_start": False,
        "items": [{"item_id": "epcot:12", "name": "Spaceship Earth", "score": 0.83, "rank": 1}]}]})

    user_id: str
    model: str
    model_version: str
    cold_start: bool
    items: list[RecommendedItem]
    events_applied: int | None = Field(0, description="events posted since the model was trained that the items "
                                                      "reflect (the history they were scored from); null without an "
                                                      "API key when there are some", examples=[0])
    context: TripContext | None = Field(None, description="set when the items are the next attractions of the "
                                                          "visitor's current trip (session model); null otherwise")
    identity: Identity | None = Field(None, description="the person of the account when it has other accounts (the "
                                                        "items are the person's: their events and visits count), to "
                                                        "a caller with an API key; null otherwise, and always null "
                                                        "without a key")


class SimilarItem(BaseModel):
    item_id: str = Field(examples=["epcot:14"])
    name: str | None = Field(examples=["Test Track"])
    score: float = Field(examples=[0.71])


class SimilarAttractions(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    item_id: str = Field(examples=["epcot:12"])
    name: str | None = Field(examples=["Spaceship Earth"])
    model: str = Field(examples=["als"])
    items: list[SimilarItem]


class NextItem(BaseModel):
    item_id: str = Field(examples=["epcot:14"])
    name: str | None = Field(examples=["Test Track"])
    score: float = Field(description="share of the moves from the attraction that went here next", examples=[0.21])
    walking_minutes: float | None = Field(description="walking time from the attraction; null: unknown",
                                          examples=[4.2])
    rank: int = Field(examples=[1])


class NextAttractions(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    item_id: str = Field(examples=["epcot:12"])
    name: str | None = Field(examples=["Spaceship Earth"])
    model: str = Field(examples=["session"])
    model_version: str = Field(examples=["20261122T010000Z:session"])
    moves: int = Field(description="moves from the attraction to another one in the training trips", examples=[412])
    items: list[NextItem]


class Address(BaseModel):
    id: str = Field(examples=["address:3f2a9c1b0d4e"])
    address: str | None = Field(default=None, examples=["12 Main St"])
    city: str | None = Field(default=None, examples=["Springfield"])
    state: str | None = Field(default=None, examples=["IL"])
    zip: str | None = Field(default=None, examples=["62701"])


class Vehicle(BaseModel):
    id: str = Field(examples=["vehicle:1HGCM82633A004352"])
    vin: str | None = Field(default=None, examples=["1HGCM82633A004352"])
    make: str | None = Field(default=None, examples=["Honda"])
    model: str | None = Field(default=None, examples=["Accord"])
    year: int | str | None = Field(default=None, examples=[2019])


class Policy(BaseModel):
    id: str = Field(examples=["policy:11376-property"])
    line: str | None = Field(default=None, examples=["property"])
    addresses: list[Address] = []
    vehicles: list[Vehicle] = []


class CustomerRecord(BaseModel):
    id: str = Field(examples=["11376-property"])
    source: str | None = Field(default=None, examples=["property"])
    first_name: str | None = Field(default=None, examples=["Maria"])
    last_name: str | None = Field(default=None, examples=["Lopez"])
    date_of_birth: str | None = Field(default=None, examples=["1980-04-02"])
    ssn: str | None = Field(default=None, examples=["***-**-1234"])
    home_phone: str | None = Field(default=None, examples=["555-0100"])
    company: str | None = Field(default=None, examples=["Acme"])
    addresses: list[Address] = []
    policies: list[Policy] = []


class Account(BaseModel):
    """A theme-park app account of the person (a visitor SameAs the match); contact fields masked without pii."""

    user_id: str = Field(description="the account id, the USER_ID of its visits and recommendations (role pii; "
                                     "`account:1`, ... numbered within the answer for any other caller)",
                         examples=["acct-0001234"])
    first_name: str | None = Field(default=None, examples=["Maria"])
    last_name: str | None = Field(default=None, examples=["Lopez"])
    date_of_birth: str | None = Field(default=None, examples=["1980-**-**"])
    home_phone: str | None = Field(default=None, examples=["***-***-0100"])
    email: str | None = Field(default=None, examples=["***@example.com"])
    zip: str | None = Field(default=None, examples=["627**"])


class ParkVisits(BaseModel):
    """The person's visits to one park, over all their accounts."""

    park: str | None = Field(examples=["caliAdv"])
    trips: int | None = Field(description="trips to the park (each one account's); null: the graph has no trips",
                              examples=[3])
    attractions: int = Field(description="distinct attractions visited", examples=[5])
    photos: int = Field(description="photos (or interactions) at its attractions", examples=[14])
    last_visit: int | None = Field(description="epoch seconds of the latest visit; null: the graph has no trips",
                                   examples=[1740912000])


class Customer360(BaseModel):
    match_id: str = Field(examples=["17"])
    pii: bool = Field(description="true when SSNs are shown unmasked", examples=[False])
    customers: list[CustomerRecord]
    accounts: list[Account] = Field(default=[], description="the person's theme-park app accounts")
    visits: list[ParkVisits] = Field(default=[], description="a summary per park of the accounts' visits, most "
                                                             "trips first")
    recommendations: list[RecommendedItem] = Field(
        default=[], description="the accounts' recommendations merged: each attraction once with its best score, "
                                "none the person visited under any account, the top 10")
    split_into: list[str] | None = Field(
        default=None, description="only for a match id the published run split: the ids of the parts that left it "
                                  "(largest first); this answer is its largest part, which kept the id",
        examples=[["131"]])


class CustomerRecommendations(BaseModel):
    """The recommendations of a person's park accounts merged (GET /customers/{match_id}/recommendations)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "match_id": "17", "items": [{"item_id": "epcot:11", "name": "Spaceship Earth", "score": 0.9, "rank": 1}]}]})

    match_id: str
    items: list[RecommendedItem]
    split_into: list[str] | None = Field(default=None, description="only for a match id the published run split: "
                                                                   "the ids of the parts that left it")


class MergedMatch(BaseModel):
    """The 308 of a match id the published run merged into another (Location: the same request for the survivor)."""

    match_id: str = Field(description="the id asked for")
    merged_into: str = Field(description="the id the person has now (the one holding most of its records)",
                             examples=["17"])


class SearchHit(BaseModel):
    match_id: str = Field(examples=["17"])
    first_name: str | None = Field(default=None, examples=["Maria"])
    last_name: str | None = Field(default=None, examples=["Lopez"])
    date_of_birth: str | None = Field(default=None, examples=["1980-04-02"])
    records: int = Field(examples=[2])


class SearchResult(BaseModel):
    matches: list[SearchHit]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    ready: bool = Field(examples=[True])
    run_id: str | None = Field(examples=["20261122T010000Z"])
    graph: bool = Field(examples=[True])
    graph_error: str | None = Field(default=None, examples=[None])


class Version(BaseModel):
    run_id: str | None = Field(examples=["20261122T010000Z"])
    served_model: str | None = Field(examples=["als"])
    models: dict[str, str] = Field(examples=[{"als": "20261122T010000Z:als"}])
    created_at: str | None = Field(default=None, examples=["2026-11-22T01:00:00Z"])


# ---- real time ----------------------------------------------------------------------------------------------------

class Event(BaseModel):
    """One interaction, as in the interactions schema (USER_ID, ITEM_ID, TIMESTAMP, EVENT_VALUE), by the rules of
    c360.events: the timestamp's window and the value's bound are the settings' (checked at request time)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user_id": "10007579@N00", "item_id": "epcot:12", "timestamp": 1796601600, "event_value": 1,
         "event_id": "app-7f3a-000123"}]})

    user_id: str = Field(max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
    item_id: str = Field(max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description="an attraction of the published run")
    timestamp: StrictInt = Field(description="epoch seconds (an integer), at most realtime.max_event_age_s old and "
                                             "realtime.max_clock_skew_s ahead")
    event_value: StrictFloat = Field(1.0, gt=0, allow_inf_nan=False,
                                     description="strength (e.g. photos), at most realtime.max_event_value")
    event_id: str | None = Field(None, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN,
                                 description="idempotency key of the user: an event of this user_id and event_id "
                                             "already in the log is skipped")


def _one_or_many(value: Any) -> str:
    return "events" if isinstance(value, list) else "event"


# one event or a list; the discriminator keeps a 422's field the event's own (item_id, not a union branch)
Events = Annotated[Annotated[Event, Tag("event")] | Annotated[list[Event], Tag("events")], Discriminator(_one_or_many)]


class EventsAccepted(BaseModel):
    accepted: int = Field(examples=[3], description="events now durable in the events log")
    duplicates: int = Field(0, examples=[0],
                            description="events skipped: their user's event_id is in the log already")


_TEXT = Annotated[str | None, Field(None, min_length=1, max_length=200)]

# a customer record by the match config's roles (and `attributes` for its other columns); the model compares the
# roles the published config maps, the graph shows the merged ones
CustomerRecordIn = create_model(
    "CustomerRecordIn",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "77001-property", "source": "property", "first_name": "Maria", "last_name": "Lopez",
         "date_of_birth": "1980-04-02", "ssn": "123-45-6789", "home_phone": "217-555-0100", "address": "12 Main St",
         "city": "Springfield", "state": "IL", "zip": "62701", "company": "Acme"}]}),
    id=(str | None, Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
                          description="the record's id (required with commit=true), e.g. 77001-property")),
    source=(str | None, Field(None, min_length=1, max_length=50, description="auto | property | ...")),
    attributes=(dict[str, str] | None, Field(None, max_length=50, description="the config's other columns")),
    **{role: (_TEXT, None) for role in KNOWN_ROLES},
)


class MatchCandidate(BaseModel):
    match_id: str = Field(examples=["17"])
    match_probability: float = Field(examples=[0.9993])


class MatchLevel(BaseModel):
    comparison: str = Field(examples=["first_name"])
    level: str = Field(examples=["Exact match on first_name"])
    match_weight: float | None = Field(examples=[6.3])


class MatchExplanation(BaseModel):
    threshold: float = Field(examples=[0.995])
    candidates_scored: int = Field(examples=[4])
    scorer: str = Field(examples=["compiled"])
    match_weight: float | None = Field(None, examples=[21.4])
    relatives_guard: bool | None = Field(None, description="clearly different first names vetoed the link")
    comparisons: list[MatchLevel] = []


class HeldBack(BaseModel):
    match_id: str = Field(description="the customer the record scored at or above the threshold with", examples=["157"])
    match_probability: float = Field(examples=[0.9999995])
    rule: str = Field(description="the rule that kept them apart: relatives_guard (the households rule: clearly "
                                  "different first names are relatives, not one person)", examples=["relatives_guard"])
    needs: str = Field(description="what would let such a record link",
                       examples=["the first names must agree or be close (a record without a first name is not "
                                 "held back)"])


class MatchResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "match_id": "17", "match_probability": 0.9993, "candidates": [{"match_id": "17", "match_probability": 0.9993}],
        "explanation": {"threshold": 0.995, "candidates_scored": 2, "scorer": "compiled", "match_weight": 10.5,
                        "relatives_guard": False, "comparisons": []},
        "reason": "linked: match 17 scored 0.9993, at or above the threshold 0.995", "held_back": None,
        "committed": False, "record_id": None, "new_match": None, "in_graph": None}]})

    match_id: str | None = Field(description="the customer the record is, none at or above the threshold: null "
                                             "(`reason` says why)")
    match_probability: float
    candidates: list[MatchCandidate]
    explanation: MatchExplanation
    committed: bool = False
    record_id: str | None = None
    new_match: bool | None = Field(None, description="commit: the record got a new match_id")
    in_graph: bool | None = Field(None, description="commit: the graph store has it (false: store down, retried)")
    reason: str | None = Field(None, description="why match_id is what it is: linked, held back by a rule (and what "
                                                 "would link), below the threshold, or no candidate")
    held_back: HeldBack | None = Field(None, description="match_id null although a candidate scored at or above the "
                                                         "threshold: the best such candidate and the rule that kept "
                                                         "it apart")


class ReviewRecord(BaseModel):
    position: int = Field(description="the record's place in its set (decisions name pairs by position)", examples=[0])
    record_id: str = Field(description="the record's id; a park account's only for roles with pii "
                                       "(`account:<position>` otherwise)", examples=["11376-property"])
    match_id: str | None = Field(description="the customer it belongs to now (after the decisions so far)",
                                 examples=["157"])
    chosen_by: str = Field(description="why it is shown: the drawn pair's stratum, or `context`",
                           examples=["uncertain"])
    fields: dict[str, Any] = Field(description="its fields; SSNs, birth dates and contact fields masked without pii",
                                   examples=[{"first_name": "JOHN", "last_name": "SMITH", "ssn": "***-**-1234"}])


class ReviewSet(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "labeling_set_id": "r1.3f2a9c1b-00007", "chosen_by": "uncertain", "match_probability": 0.81,
        "pair": [0, 1], "records": [], "agreement": {"first_name": "agree", "ssn": "differ", "email": "missing"},
        "explanation": {"match_probability": 0.81, "match_weight": 2.1, "threshold": 0.995, "relatives_guard": False,
                        "comparisons": [{"comparison": "first_name", "level": "Exact match", "match_weight": 6.3}]}}]})

    labeling_set_id: str
    chosen_by: str = Field(description="how the set was drawn: uncertain, bridge, likely match, likely non-match, "
                                       "missed, or random")
    match_probability: float | None = Field(description="the model's probability for the drawn pair")
    pair: list[int] = Field(description="the positions of the drawn pair: what a decision without `pair` answers")
    records: list[ReviewRecord]
    agreement: dict[str, str] = Field(description="per field of the drawn pair: agree, differ or missing (compared "
                                                  "on the unmasked values)")
    explanation: dict[str, Any] | None = Field(description="the model's reasons for the drawn pair: probability, "
                                                           "match weight, each comparison's level and weight")


class ReviewNext(BaseModel):
    run_id: str = Field(description="the run whose queue this is")
    remaining: int = Field(description="sets nobody has decided yet")
    sets: list[ReviewSet]
    pii: bool


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labeling_set_id: str = Field(min_length=1, max_length=80, examples=["r1.3f2a9c1b-00007"])
    label: Annotated[str, Field(pattern="^(match|non-match|unsure)$", examples=["non-match"])]
    pair: list[Annotated[int, Field(ge=0, le=99)]] | None = Field(
        None, min_length=2, max_length=2, description="two positions in the set (default: the drawn pair)")


class Decisions(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "decisions": [{"labeling_set_id": "r1.3f2a9c1b-00007", "label": "non-match"}]}]})

    # as many as GET /review/next shows (20): the rate limits count requests, and each decision may split a match
    # (a scan of the scored pairs and a minimum cut under the decisions log's lock)
    decisions: list[Decision] = Field(min_length=1, max_length=20,
                                      description="at most 20, each pair once (by its records, in either order)")


class DecisionEffect(BaseModel):
    kind: str = Field(description="join: a match was merged into another; split: records left for a new id")
    from_match_id: str
    to_match_id: str
    records_moved: int


class DecisionResult(BaseModel):
    labeling_set_id: str
    pair: list[int]
    label: str
    status: str = Field(description="logged, or duplicate (the same answer about this pair was logged before)")
    effect: DecisionEffect | None = Field(description="what changed at once in the customer 360; null: nothing")


class DecisionsLogged(BaseModel):
    decisions: list[DecisionResult]
    remaining: int
