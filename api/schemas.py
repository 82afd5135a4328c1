"""Pydantic response models (with examples for the OpenAPI docs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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


class Recommendations(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [{
        "user_id": "10007579@N00", "model": "als", "model_version": "20261122T010000Z:als", "cold_start": False,
        "items": [{"item_id": "epcot:12", "name": "Spaceship Earth", "score": 0.83, "rank": 1}]}]})

    user_id: str
    model: str
    model_version: str
    cold_start: bool
    items: list[RecommendedItem]


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


class Customer360(BaseModel):
    match_id: str = Field(examples=["17"])
    pii: bool = Field(description="true when SSNs are shown unmasked", examples=[False])
    customers: list[CustomerRecord]


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
