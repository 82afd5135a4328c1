"""The export's file layout: Neptune bulk-load CSV parts, every label in its own files, all in ONE folder.

    <dir>/vertex-customer-00000.csv  vertex-customer-00001.csv  vertex-match-00000.csv ...
    <dir>/edge-SameAs-00000.csv  edge-visited-00000.csv ...

Each part has its own header (`~id,~label,<name>:<Type>(single)...` or `~id,~from,~to,~label,<name>:<Type>...`, the
label's properties sorted by name), so Neptune's loader takes the folder as it is (an S3 prefix copied from it). Cells follow
`neptune_csv`: RFC 4180 quoting with CRLF rows, an empty cell is no property, String values exact (EXACT, the
default: what a loader reads). A folder written for people to open in a spreadsheet (SPREADSHEET) holds the marker
file `_values-spreadsheet` beside its parts (readers strip the escape again; Neptune's loader would not: such a
folder is not for it).
Parts are written by Spark (one per partition of the label's DataFrame), lines formatted in Spark SQL; only the
counts per label come back to the driver.

Reading: `graph_files(dir)` lists the folder's CSV files, vertex files before edge files, told apart by their
header (as Neptune does), so a folder with the older single-file layout (`master_vertex.csv`, `master_edge.csv`)
reads too; its `values` say the form the marker file declares.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from c360.errors import InputError
from c360.graph.neptune_csv import (
    EXACT,
    SPREADSHEET,
    Element,
    check_values,
    iter_elements,
    undeclared,
)
from c360.graph.neptune_csv import header as neptune_header
from c360.graph.schema import PROPERTY_TYPES
from c360.io import FORMULA_STARTS, atomic_path
from c360.io import SPREADSHEET_ESCAPE as ESCAPE

VERTEX_KIND, EDGE_KIND = "vertex", "edge"
ROW_END = "\r\n"
SPREADSHEET_MARKER = "_values-spreadsheet"   # in a folder whose String values are in neptune_csv's SPREADSHEET form


def part_name(kind: str, label: str, index: int) -> str:
    """`vertex-customer-00000.csv`, `edge-visited-00003.csv`."""
    return f"{kind}-{label}-{index:05d}.csv"


def header_line(names: list[str]) -> str:
    """One CSV row as Python's csv writer (RFC 4180, QUOTE_MINIMAL) writes it, without the row end."""
    buf = io.StringIO()
    csv.writer(buf, dialect="excel", lineterminator="").writerow(names)
    return buf.getvalue()


# ---- writing ----------------------------------------------------------------------------------------------

def _quoted(col):
    """A CSV field as csv.writer writes it: quoted (quotes doubled) when it holds a comma, quote or line break."""
    from pyspark.sql import functions as F

    return F.when(col.rlike('[,"\r\n]'), F.concat(F.lit('"'), F.replace(col, F.lit('"'), F.lit('""')), F.lit('"'))) \
        .otherwise(col)


def _cell(col, typ: str, values: str):
    """The CSV field of a property value of Neptune type `typ` ('' when missing), as neptune_csv._fmt writes it in
    form `values` (Double in Java notation, e.g. 1.0E16: the same number)."""
    from pyspark.sql import functions as F

    if typ in ("Int", "Long"):
        text = col.cast("long").cast("string")
    elif typ in ("Double", "Float"):
        text = col.cast("double").cast("string")
    elif typ == "String" and values == SPREADSHEET:   # neptune_csv.cell_text in Spark SQL
        starts = "".join({"\t": "\\t", "\r": "\\r", "-": "\\-"}.get(c, c) for c in (*FORMULA_STARTS, ESCAPE))
        s = col.cast("string")
        text = F.when(s.rlike(f"^[{starts}]"), F.concat(F.lit(ESCAPE), s)).otherwise(s)
    else:
        text = col.cast("string")
    return _quoted(F.coalesce(text, F.lit("")))


def _with_header(header: str):
    """mapInArrow function: each non-empty partition's lines, after the header line."""
    def run(batches):
        import pyarrow as pa

        first = True
        for b in batches:
            if b.num_rows:
                if first:
                    yield pa.RecordBatch.from_arrays([pa.array([header], b.schema.field(0).type)], schema=b.schema)
                    first = False
                yield b
    return run


def label_lines(df, kind: str, label: str, props: tuple[str, ...], values: str = EXACT):
    """(header, DataFrame of one `value` column: the label's CSV rows, String values in form `values`). `df` has
    `~id` (+ `~from`, `~to`) and the properties."""
    from pyspark.sql import functions as F

    unknown = undeclared(props)
    if unknown:
        raise InputError(f"{kind}-{label}: no Neptune type declared for propert(y/ies) {', '.join(unknown)}")
    names = sorted(props)
    head = [_quoted(F.col("`~id`").cast("string"))]
    if kind == EDGE_KIND:
        head += [_quoted(F.col("`~from`").cast("string")), _quoted(F.col("`~to`").cast("string"))]
    head.append(_quoted(F.lit(label)))
    cells = head + [_cell(F.col(f"`{n}`"), PROPERTY_TYPES[n], values) for n in names]
    header = header_line(neptune_header(names, edges=kind == EDGE_KIND))
    return header, df.select(F.concat_ws(",", *cells).alias("value"))


class _Files:
    """Listing, renaming and deleting in the output's file system: os for local paths, Hadoop's FileSystem for
    hdfs://, s3a:// and other URIs."""

    def __init__(self, spark, path: str):
        self.local = "://" not in path or path.startswith("file:")
        if not self.local:
            jvm = spark.sparkContext._jvm
            self._Path = jvm.org.apache.hadoop.fs.Path
            self._fs = self._Path(path).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def parts(self, d: str) -> list[tuple[str, int]]:
        """(name, size) of the Spark part files in d, by name."""
        if self.local:
            return sorted((f.name, f.stat().st_size) for f in Path(d).iterdir() if f.name.startswith("part-"))
        return sorted((s.getPath().getName(), s.getLen()) for s in self._fs.listStatus(self._Path(d))
                      if s.getPath().getName().startswith("part-"))

    def rename(self, src: str, dst: str) -> None:
        if self.local:
            os.replace(src, dst)
        elif not self._fs.rename(self._Path(src), self._Path(dst)):
            raise OSError(f"cannot rename {src} to {dst}")

    def delete(self, path: str) -> None:
        if self.local:
            shutil.rmtree(path, ignore_errors=True)
        else:
            self._fs.delete(self._Path(path), True)

    def mkdirs(self, path: str) -> None:
        if self.local:
            Path(path).mkdir(parents=True, exist_ok=True)
        else:
            self._fs.mkdirs(self._Path(path))

    def touch(self, path: str) -> None:
        if self.local:
            Path(path).touch()
        else:
            self._fs.create(self._Path(path), True).close()


@dataclass
class WrittenGraph:
    """What an export wrote: counts by label and the part files' names."""

    dir: str
    counts: dict = field(default_factory=lambda: {"vertices": {}, "edges": {}})
    files: list[str] = field(default_factory=list)


def _write_into(spark, files: _Files, out: str, frames, props_of, values: str) -> WrittenGraph:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    written = WrittenGraph(out)
    staging = f"{out}/_staging"
    for kind, by_label, key in ((VERTEX_KIND, frames.vertices, "vertices"), (EDGE_KIND, frames.edges, "edges")):
        for label in sorted(by_label):
            header, lines = label_lines(by_label[label], kind, label, props_of(kind, label), values)
            seen = Observation(f"{kind}-{label}-{uuid.uuid4().hex[:8]}")
            lines = lines.observe(seen, F.count(F.lit(1)).alias("rows"))
            target = f"{staging}/{kind}-{label}"
            lines.mapInArrow(_with_header(header), "value string").write.mode("overwrite") \
                .option("lineSep", ROW_END).text(target)
            n = int(seen.get["rows"])
            if n:
                written.counts[key][label] = n
                for i, name in enumerate(p for p, size in files.parts(target) if size > 0):
                    files.rename(f"{target}/{name}", f"{out}/{part_name(kind, label, i)}")
                    written.files.append(part_name(kind, label, i))
    files.delete(staging)
    if values == SPREADSHEET:
        files.touch(f"{out}/{SPREADSHEET_MARKER}")
    return written


def write_graph_parts(spark, frames, out_dir: str | Path, props_of, check=None, values: str = EXACT) -> WrittenGraph:
    """Write GraphFrames as parts per label into out_dir, replacing it whole (readers see the old folder or the new
    one: a temporary sibling renamed into place). `props_of(kind, label)` names the label's properties; `check`
    (WrittenGraph → None) may refuse the result (raise) before it replaces anything; `values`: the String values'
    form (neptune_csv)."""
    check_values(values)
    out = str(out_dir)
    files = _Files(spark, out)
    if files.local:
        with atomic_path(Path(out.removeprefix("file:"))) as tmp:
            tmp.mkdir(parents=True)
            written = _write_into(spark, files, str(tmp), frames, props_of, values)
            if check:
                check(written)
        written.dir = out
        return written
    tmp = f"{out.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        files.mkdirs(tmp)
        written = _write_into(spark, files, tmp, frames, props_of, values)
        if check:
            check(written)
        files.delete(out)
        files.rename(tmp, out)
    finally:
        files.delete(tmp)
    written.dir = out
    return written


def write_element_parts(out_dir: str | Path, vertices: list, edges: list, props_of=None,
                        values: str = EXACT) -> list[Path]:
    """Elements held in memory (tests, one record's additions, a local export) written in the same layout, one part
    per label (neptune_csv.write_elements), into out_dir (created); returns the part files. `props_of(kind, label)`,
    when given, names each label's property columns (as the Spark export writes them), else the elements' own;
    `values`: the String values' form (neptune_csv)."""
    from c360.graph.neptune_csv import write_elements

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, elements in ((VERTEX_KIND, vertices), (EDGE_KIND, edges)):
        for label in sorted({e.label for e in elements}):
            group = sorted((e for e in elements if e.label == label), key=lambda e: e.id)
            names = props_of(kind, label) if props_of else None
            paths.append(write_elements(out / part_name(kind, label, 0), group, edges=kind == EDGE_KIND, names=names,
                                        values=values))
    if values == SPREADSHEET:
        (out / SPREADSHEET_MARKER).touch()
    return paths


# ---- reading ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GraphFileSet:
    """A folder's Neptune CSV files: vertex files and edge files, each list by name, and the form of their String
    values (neptune_csv.VALUE_FORMS)."""

    dir: Path
    vertices: list[Path]
    edges: list[Path]
    values: str = EXACT

    @property
    def all(self) -> list[Path]:
        """Every file, vertex files first."""
        return [*self.vertices, *self.edges]


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        try:
            return next(csv.reader(fh))
        except StopIteration:
            raise InputError(f"{path}: file is empty") from None


def graph_files(csv_dir: str | Path) -> GraphFileSet:
    """The CSV files of an export folder (hidden and `_` files skipped), vertex files (header `~id,~label,...`)
    and edge files (`~id,~from,~to,~label,...`) by name, in the form the folder declares (SPREADSHEET_MARKER);
    InputError when the folder is missing or holds none."""
    d = Path(csv_dir)
    if not d.is_dir():
        raise InputError(f"{d}: --csv directory not found")
    vertices, edges = [], []
    for f in sorted(d.iterdir()):
        if not f.is_file() or f.name.startswith(("_", ".")) or not f.name.lower().endswith(".csv"):
            continue
        head = _header(f)
        (edges if len(head) > 1 and head[1] == "~from" else vertices).append(f)
    if not vertices and not edges:
        raise InputError(f"{d}: no Neptune CSV files (vertex-*.csv, edge-*.csv)")
    return GraphFileSet(d, vertices, edges, SPREADSHEET if (d / SPREADSHEET_MARKER).exists() else EXACT)


def read_graph(csv_dir: str | Path) -> tuple[list[Element], list[Element]]:
    """(vertices, edges) of every Neptune CSV in DIR (the export's parts, graph.neptune_parts), all in memory: for
    tests and small graphs; `c360 graph load` streams them (graph.loader)."""
    files = graph_files(csv_dir)
    return ([v for f in files.vertices for v in iter_elements(f, edges=False, values=files.values)],
            [e for f in files.edges for e in iter_elements(f, edges=True, values=files.values)])
