"""The registry of graph backends: spec scheme → GraphStore class; `open_store` looks schemes up here.

Built-in backends are named by "module:Class" and imported only when a spec of theirs is opened, so opening
the embedded store never loads the Gremlin driver (and importing graph.store loads no backend at all).
Adding a backend: one module with a GraphStore subclass, one line in BUILTIN (or `register()` at run time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from c360.errors import InputError

if TYPE_CHECKING:  # the registry depends on nothing in the package at run time: graph.store imports it
    from c360.graph.store import GraphStore, StoreSpec

# scheme: (backend class or "module:Class", the spec forms it accepts, for error messages)
BUILTIN: dict[str, tuple[str, str]] = {
    "networkx": ("c360.graph.networkx_store:NetworkxStore", "networkx, networkx:PATH"),
    "gremlin": ("c360.graph.gremlin_store:GremlinStore", "gremlin://HOST:PORT"),
    "ws": ("c360.graph.gremlin_store:GremlinStore", "ws://HOST:PORT[/PATH]"),
    "wss": ("c360.graph.gremlin_store:GremlinStore", "wss://HOST:PORT[/PATH]"),
}
_registry: dict[str, tuple[type["GraphStore"] | str, str]] = dict(BUILTIN)


def register(scheme: str, backend: type[GraphStore] | str, usage: str | None = None) -> None:
    """Make specs with this scheme open `backend` (a GraphStore subclass or "module:Class")."""
    _registry[scheme] = (backend, usage or f"{scheme}:...")


def unregister(scheme: str) -> None:
    """Forget a scheme registered with `register` (built-ins come back as they were)."""
    _registry.pop(scheme, None)
    if scheme in BUILTIN:
        _registry[scheme] = BUILTIN[scheme]


def is_registered(scheme: str) -> bool:
    """True when specs with this scheme name a backend."""
    return scheme in _registry


def usage() -> str:
    """The accepted spec forms, for error messages."""
    forms = [u for _, u in _registry.values()]
    return ", ".join(forms[:-1]) + f" or {forms[-1]}" if len(forms) > 1 else "".join(forms)


def backend_for(spec: StoreSpec) -> type[GraphStore]:
    """The GraphStore class registered for the spec's scheme (imported now if named by string)."""
    try:
        backend, _ = _registry[spec.scheme]
    except KeyError:
        raise InputError(f"graph store {spec.text!r}: expected {usage()}") from None
    if isinstance(backend, str):
        module, _, name = backend.partition(":")
        backend = getattr(importlib.import_module(module), name)
    return backend
