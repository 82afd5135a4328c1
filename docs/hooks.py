"""MkDocs hooks: the reference parts of the pages rendered from the code at build time (docs/reference.py).

A page asks for one with a marker line, `<!-- reference: cli -->` (cli, config, roles); the HTTP page (api.md) has
its `## METHOD /path` sections completed from the OpenAPI document and a section added for every route it lacks.
The graph schema's picture is written into the site as `img/graph-schema.svg`.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mkdocs.structure.files import File

_spec = importlib.util.spec_from_file_location("c360_docs_reference", Path(__file__).with_name("reference.py"))
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

MARKER = re.compile(r"^<!-- reference: (\w+) -->$", re.M)
RENDER = {"cli": reference.cli_markdown, "config": reference.config_markdown, "roles": reference.roles_markdown}
HTTP_PAGE = "api.md"
GRAPH_SVG = "img/graph-schema.svg"


def on_files(files, config):
    files.append(File.generated(config, GRAPH_SVG, content=reference.graph_svg()))
    return files


def on_page_markdown(markdown, page, config, files):
    markdown = MARKER.sub(lambda m: RENDER[m.group(1)](), markdown)
    if page.file.src_uri == HTTP_PAGE:
        markdown = reference.http_markdown(markdown)
    return markdown
