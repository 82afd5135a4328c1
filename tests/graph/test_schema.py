"""graph.schema is the one declaration of the graph's labels, properties and types: the exports, the Neptune CSV
headers and the stores derive from it; what spells the graph elsewhere (the API's response models, the nightly's
expected counts for the graph gate, the exploration notebook) is checked against it here."""

from __future__ import annotations

import ast
import csv
import inspect
import json

import pytest
from pydantic import TypeAdapter

from c360.graph import schema, store
from c360.graph.export import GraphBuilder, build_graph, export_graph
from c360.graph.neptune_csv import header
from c360.graph.neptune_parts import read_graph
from tests.conftest import REPO
from tests.graph.conftest import sample_inputs

ALL_LABELS = (*schema.VERTICES, *schema.EDGES)


def _header(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


# ---- the declaration itself -------------------------------------------------------------------------------

def test_labels_and_properties_are_declared_once_with_known_types():
    names = [label.name for label in ALL_LABELS]
    assert len(set(names)) == len(names)
    for label in ALL_LABELS:
        assert len(set(label.names)) == len(label.names), label.name
        assert all(p.type in schema.TYPES for p in label.properties)
    for edge in schema.EDGES:
        assert edge.ends and all(f in schema.VERTICES and t in schema.VERTICES for f, t in edge.ends), edge.name
    # one property name, one type on every label (a CSV column is typed by its name)
    for label in ALL_LABELS:
        for p in label.properties:
            assert schema.PROPERTY_TYPES[p.name] == p.type
    assert set(schema.PROPERTY_TYPES) == {p.name for label in ALL_LABELS for p in label.properties}
    assert set(schema.CUSTOMER_RECORD_PROPS) < set(schema.CUSTOMER.names)


def test_a_property_name_with_two_types_is_refused():
    clash = schema.VertexLabel("x", (schema.Property("records", schema.STRING),))
    with pytest.raises(ValueError, match="records: typed Int and String"):
        schema.property_index((schema.MATCH, clash))
    with pytest.raises(ValueError, match="not one of"):
        schema.Property("photos", "Long")


def test_ids_and_lookups():
    assert schema.POLICY.vertex_id("1001-auto") == "policy:1001-auto"
    assert schema.CUSTOMER.vertex_id("1001-auto") == "1001-auto"
    assert schema.COVERS.edge_id("a", "b") == "covers:a->b"
    assert schema.RECOMMENDED.edge_id("visitor:u", "epcot:5", qualifier="als") == "recommended:als:visitor:u->epcot:5"
    assert schema.props_of("edge", "recommended") == ("score", "rank", "model")
    assert schema.props_of("vertex", "visitor") == ("name", "user_id", "first_name", "last_name", "date_of_birth",
                                                    "home_phone", "email", "zip", "park_trips")
    assert schema.props_of("edge", "visited") == ("photos", "last_visit", "trips")
    assert (schema.VISITOR, schema.MATCH) in schema.SAME_AS.ends
    assert schema.format_park_trips({"epcot": 1, "caliAdv": 3}) == "caliAdv=3;epcot=1"
    assert schema.parse_park_trips("caliAdv=3;epcot=1") == {"caliAdv": 3, "epcot": 1}
    assert schema.format_park_trips({}) is None and schema.parse_park_trips(None) == {}
    with pytest.raises(KeyError, match="no vertex label 'person'"):
        schema.label_of("vertex", "person")
    with pytest.raises(ValueError, match="no property nickname"):
        schema.CUSTOMER.fields("first_name", "nickname")


# ---- what derives from it ---------------------------------------------------------------------------------

def test_neptune_csv_headers_are_the_schemas(sample_dir, tmp_path):
    """Every declared label is in the local export of the full sample, each file with the label's declared columns;
    edges join the declared labels; ids carry the declared prefixes."""
    written = export_graph(tmp_path / "graph", engine="local", **sample_inputs(sample_dir))
    for kind, labels in (("vertices", schema.VERTICES), ("edges", schema.EDGES)):
        assert set(written.counts[kind]) == {label.name for label in labels}
        for label in labels:
            system = ["~id", "~from", "~to", "~label"] if kind == "edges" else ["~id", "~label"]
            expected = system + label.csv_columns()
            prefix = "edge" if kind == "edges" else "vertex"
            assert _header(tmp_path / "graph" / f"{prefix}-{label.name}-00000.csv") == expected
            assert header(sorted(label.names), edges=kind == "edges") == expected
    vertices, edges = read_graph(tmp_path / "graph")
    label_of = {v.id: v.label for v in vertices}
    for v in vertices:
        prefix = schema.VERTEX_LABELS[v.label].id_prefix
        assert prefix is None or v.id.startswith(prefix), v.id
        assert set(v.props) <= set(schema.VERTEX_LABELS[v.label].names)
    for e in edges:
        label = schema.EDGE_LABELS[e.label]
        assert (label_of[e.frm], label_of[e.to]) in {(f.name, t.name) for f, t in label.ends}, e.id
        assert e.id.startswith(label.id_head()) and e.id.endswith(f"{e.frm}{schema.EDGE_ID_ARROW}{e.to}")
        for name, value in e.props.items():
            assert isinstance(value, schema.PROPERTIES[name].python_type), (e.id, name)


def test_builder_refuses_an_undeclared_property_or_label():
    b = GraphBuilder()
    with pytest.raises(ValueError, match="customer: no property nickname"):
        b.vertex("1001-auto", schema.CUSTOMER, nickname="Jim")
    with pytest.raises(ValueError, match="visited: no property score"):
        b.edge(schema.VISITED, "visitor:u", "epcot:5", score=1.0)
    assert not b.vertices and not b.edges


def test_record_by_record_values_have_the_declared_types(sample_dir):
    b = build_graph(**sample_inputs(sample_dir))
    for el, labels in ((b.vertices, schema.VERTEX_LABELS), (b.edges, schema.EDGE_LABELS)):
        for e in el.values():
            for name, value in e.props.items():
                assert name in labels[e.label].names
                assert isinstance(value, schema.PROPERTIES[name].python_type), (e.id, name, value)


def test_spark_frames_have_the_declared_columns_and_types(sample_dir, spark):
    from c360.graph.spark_graph import graph_frames

    frames = graph_frames(spark, **sample_inputs(sample_dir))
    try:
        for label, df in frames.vertices.items():
            expected = [("~id", "string"), *[(p.name, p.spark_type) for p in schema.VERTEX_LABELS[label].properties]]
            assert df.dtypes == expected, label
        for label, df in frames.edges.items():
            expected = [("~id", "string"), ("~from", "string"), ("~to", "string"),
                        *[(p.name, p.spark_type) for p in schema.EDGE_LABELS[label].properties]]
            assert df.dtypes == expected, label
        assert set(frames.vertices) == set(schema.VERTEX_LABELS) and set(frames.edges) == set(schema.EDGE_LABELS)
    finally:
        frames.release()


def test_store_answer_fields_are_declared_properties():
    for fields, label in ((store.CUSTOMER_FIELDS, schema.CUSTOMER), (store.ADDRESS_FIELDS, schema.ADDRESS),
                          (store.VEHICLE_FIELDS, schema.VEHICLE), (store.POLICY_FIELDS, schema.POLICY),
                          (store.SEARCH_FIELDS, schema.CUSTOMER), (store.SEARCH_KEYS, schema.CUSTOMER),
                          (store.VISIT_FIELDS, schema.VISITED), (store.RECOMMENDATION_FIELDS, schema.RECOMMENDED),
                          (store.ACCOUNT_FIELDS, schema.VISITOR)):
        assert set(fields) <= set(label.names), label.name


# ---- what is checked against it ---------------------------------------------------------------------------

def _accepts(annotation, python_type: type) -> bool:
    sample = {str: "x", int: 7, float: 0.5}[python_type]
    return TypeAdapter(annotation).validate_python(sample) == sample


def test_api_response_models_show_the_stores_fields_with_the_declared_types():
    from c360.api import masking
    from c360.api.schemas import Account, Address, CustomerRecord, ParkVisits, Policy, SearchHit, Vehicle

    models = ((Account, schema.VISITOR, ("user_id",), store.ACCOUNT_FIELDS),
              (Address, schema.ADDRESS, ("id",), store.ADDRESS_FIELDS),
              (Vehicle, schema.VEHICLE, ("id",), store.VEHICLE_FIELDS),
              (Policy, schema.POLICY, ("id", "addresses", "vehicles"), store.POLICY_FIELDS),
              (CustomerRecord, schema.CUSTOMER, ("id", "addresses", "policies"), store.CUSTOMER_FIELDS),
              (SearchHit, schema.CUSTOMER, ("match_id", "records"), store.SEARCH_FIELDS))
    for model, label, other, fields in models:
        assert set(model.model_fields) == {*other, *fields}, model.__name__
        for name in fields:
            assert _accepts(model.model_fields[name].annotation, schema.PROPERTIES[name].python_type), (model, name)
        if label.id_prefix and "id" in model.model_fields:
            assert all(x.startswith(label.id_prefix) for x in model.model_fields["id"].examples), model.__name__
    assert "records" in schema.MATCH.names and _accepts(SearchHit.model_fields["records"].annotation, int)
    assert masking.VEHICLE_PREFIX == schema.VEHICLE.id_prefix
    assert _accepts(Account.model_fields["user_id"].annotation, schema.PROPERTIES[store.ACCOUNT_KEY].python_type)
    # a park's visit summary: trips and last_visit as the visited edge types them, photos summed
    for name in ("trips", "last_visit", "photos"):
        assert _accepts(ParkVisits.model_fields[name].annotation, schema.PROPERTIES[name].python_type), name
    assert _accepts(ParkVisits.model_fields["park"].annotation, schema.PROPERTIES[store.ATTRACTION_PARK].python_type)
    assert set(masking.ACCOUNT_MASKS) <= set(store.ACCOUNT_FIELDS)


def _dict_keys(node: ast.Dict) -> list[str]:
    return [k.value for k in node.keys if isinstance(k, ast.Constant)]


def test_the_graph_gates_expected_labels_are_declared():
    """jobs.steps.expected_graph_counts (the graph gate's expectation) names only declared labels."""
    from c360.jobs.steps import expected_graph_counts

    tree = ast.parse(inspect.getsource(expected_graph_counts).lstrip())
    returned = tree.body[0].body[-1].value  # the function's last statement: return {"vertices": ..., "edges": ...}
    assert isinstance(returned, ast.Dict) and _dict_keys(returned) == ["vertices", "edges"]
    vertices, edges = returned.values
    assert set(_dict_keys(vertices)) <= set(schema.VERTEX_LABELS)
    assert set(_dict_keys(edges)) <= set(schema.EDGE_LABELS)


def _label_literals(tree: ast.AST, labels: set[str]) -> list[str]:
    """Label names spelled where code uses a label: an argument of `vertex_ids(...)`, a comparison with an element's
    `["label"]`, a dict key (prose in print calls is not a use)."""
    def lit(n):
        return isinstance(n, ast.Constant) and n.value in labels

    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "vertex_ids":
            found += [a.value for a in n.args if lit(a)]
        elif isinstance(n, ast.Compare) and any(isinstance(x, ast.Subscript) and getattr(x.slice, "value", None)
                                                == "label" for x in (n.left, *n.comparators)):
            found += [x.value for x in (n.left, *n.comparators) if lit(x)]
        elif isinstance(n, ast.Dict):
            found += [k.value for k in n.keys if lit(k)]
    return found


def test_the_notebook_names_labels_through_the_schema():
    nb = json.loads((REPO / "notebooks" / "explore_customer360.ipynb").read_text())
    labels = {label.name for label in ALL_LABELS}
    assert _label_literals(ast.parse('ids = g.vertex_ids("match")\nc = {"policy": 1}\nx = e["label"] == "visited"'),
                           labels) == ["match", "policy", "visited"]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not _label_literals(ast.parse("".join(cell["source"])), labels), "".join(cell["source"])[:200]
