"""Neptune CSVs are safe to open in a spreadsheet: no cell starts a formula, and the values still round-trip."""

from __future__ import annotations

import csv

from c360.graph.neptune_csv import FORMULA_STARTS, Element, read_elements, write_elements

HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\tcmd", "\rcmd", "'=already", "'",
           "O'Neil", "plain", "a=b"]


def test_no_cell_starts_a_formula_and_values_round_trip(tmp_path):
    elements = [Element(f"c{i}", "customer", {"last_name": v, "company": v}) for i, v in enumerate(HOSTILE)]
    elements.append(Element("n", "policy", {"insured_value": -5.5, "year": -1}))  # numbers stay numbers
    path = write_elements(tmp_path / "master_vertex.csv", elements, edges=False)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    cells = [cell for row in rows[1:] for cell in row[2:] if cell]
    string_cells = [c for c in cells if c not in ("-5.5", "-1")]
    assert string_cells and not [c for c in string_cells if c.startswith(FORMULA_STARTS)]
    assert "-5.5" in cells and "-1" in cells
    assert [e.props for e in read_elements(path, edges=False)] == [e.props for e in elements]
