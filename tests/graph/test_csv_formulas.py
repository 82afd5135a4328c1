"""String values per destination: exact in files bound for a loader (the default), spreadsheet-safe in files a person
opens (no cell starts a formula), and both read back to the same values."""

from __future__ import annotations

import csv

from c360.graph.neptune_csv import SPREADSHEET, Element, read_elements, write_elements
from c360.graph.neptune_parts import graph_files, read_graph, write_element_parts
from c360.io import FORMULA_STARTS

HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\tcmd", "\rcmd", "'=already", "'",
           "O'Neil", "plain", "a=b"]


def _cells(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for row in list(csv.reader(fh))[1:] for cell in row[2:] if cell]


def test_spreadsheet_form_starts_no_formula_and_values_round_trip(tmp_path):
    elements = [Element(f"c{i}", "customer", {"last_name": v, "company": v}) for i, v in enumerate(HOSTILE)]
    elements.append(Element("n", "policy", {"insured_value": -5.5, "year": -1}))  # numbers stay numbers
    path = write_elements(tmp_path / "master_vertex.csv", elements, edges=False, values=SPREADSHEET)
    cells = _cells(path)
    string_cells = [c for c in cells if c not in ("-5.5", "-1")]
    assert string_cells and not [c for c in string_cells if c.startswith(FORMULA_STARTS)]
    assert "-5.5" in cells and "-1" in cells
    assert [e.props for e in read_elements(path, edges=False, values=SPREADSHEET)] == [e.props for e in elements]


def test_files_for_a_loader_hold_values_exactly_and_folders_say_their_form(tmp_path):
    elements = [Element(f"c{i}", "customer", {"last_name": v}) for i, v in enumerate(HOSTILE)]
    exact = write_element_parts(tmp_path / "exact", elements, [])
    assert sorted(_cells(exact[0])) == sorted(HOSTILE)           # what Neptune's loader stores: the values
    write_element_parts(tmp_path / "people", elements, [], values=SPREADSHEET)
    assert graph_files(tmp_path / "exact").values == "exact" and graph_files(tmp_path / "people").values == SPREADSHEET
    for folder in ("exact", "people"):                           # either reads back to the same values
        assert sorted(v.props["last_name"] for v in read_graph(tmp_path / folder)[0]) == sorted(HOSTILE)
