"""The documentation as the tests read it: the pages' sources, their sections and their request examples, and the
generators of docs/reference.py (loaded by path, as docs/hooks.py loads it)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

from tests.conftest import REPO

DOCS = REPO / "docs"
_spec = importlib.util.spec_from_file_location("c360_docs_reference", DOCS / "reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

# a fenced block: its language, the rest of its opening line (a title="..."), its text
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
STATUS_TITLE = re.compile(r'title="(\d{3})\b')
ROLES_LINE = re.compile(r"^Roles: (.+)$", re.M)


def page(name: str) -> str:
    return (DOCS / name).read_text()


def section(markdown: str, heading: str) -> str:
    """The text under `## heading` up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"no section '## {heading}'"
    return match.group(1)


@dataclass(frozen=True)
class Example:
    """A request of the docs: a ```bash block of one `curl` against $C360, with the response block after it
    (```json or ```text with title="<status> ..."), the endpoint section it is in (api.md), if any, and the roles
    of the `Roles:` line nearest above it there."""

    page: str
    command: str
    status: int | None
    response: str | None
    lang: str | None
    endpoint: tuple[str, str] | None
    roles: tuple[str, ...] | None   # the section's `Roles:` line; () for a public endpoint

    def __str__(self) -> str:
        return f"{self.page}: {self.command.splitlines()[0]}"


def examples() -> list[Example]:
    """Every request example of every page, in page order."""
    out = []
    for path in sorted(DOCS.glob("**/*.md")):
        text = path.read_text()
        sections = reference.endpoint_sections(text)
        blocks = list(FENCE.finditer(text))
        for i, block in enumerate(blocks):
            command = block.group(3).strip()
            if block.group(1) != "bash" or not command.startswith("curl ") or "$C360" not in command:
                continue
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            status = response = lang = None
            if after is not None and not text[block.end():after.start()].strip():
                found = STATUS_TITLE.search(after.group(2))
                if found:
                    status, response, lang = int(found.group(1)), after.group(3), after.group(1)
            endpoint = roles = None
            for key, body in sections.items():
                at = body.find(block.group(0))
                if at >= 0:  # the roles of the `Roles:` line nearest above the request in its section
                    endpoint = key
                    lines = ROLES_LINE.findall(body[:at])
                    if lines:
                        roles = parse_roles(lines[-1])
            out.append(Example(path.relative_to(DOCS).as_posix(), command, status, response, lang, endpoint, roles))
    return out


def parse_roles(line: str) -> tuple[str, ...]:
    """The roles a `Roles:` line names before any parenthesis (`pii, writer`); () for `public`."""
    from c360.api.dependencies import ROLE_GRANTS

    head = line.split("(", 1)[0]
    if head.strip().startswith("public"):
        return ()
    return tuple(role for role in ROLE_GRANTS if re.search(rf"\b{role}\b", head))


def docs_key(role: str) -> str:
    """The key the docs' examples use for `role` (the quick start configures one per role)."""
    return f"docs-{role}"
