"""Algorithm names -> Recommender classes, filled by the `@register` decorator of each algorithm class.

Tiny on purpose: it imports only the base interface, so algorithm modules (blend included, which builds its
components by name) can import it without a cycle. The `c360.recsys.algorithms` package imports every
algorithm module, so anything that imports that package (models, auto, cli) sees them all registered.
"""

from __future__ import annotations

from typing import TypeVar

from c360.errors import InputError

from .base import Recommender

R = TypeVar("R", bound=type[Recommender])

# name -> class, in registration order (the order `--algo` choices are listed in)
ALGORITHMS: dict[str, type[Recommender]] = {}
RESERVED = ("auto",)   # not a class: `train("auto", ...)` chooses among the registered ones


def register(cls: R) -> R:
    """Class decorator: make `cls` trainable and loadable under `cls.name`."""
    name = cls.name
    if not name or name in RESERVED:
        raise ValueError(f"{cls.__qualname__}: a registered algorithm needs a name other than {name!r}")
    known = ALGORITHMS.get(name)
    # the same class registered again (a module reloaded) replaces itself; two classes never share a name
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"algorithm name {name!r} already registered by {known.__qualname__}")
    ALGORITHMS[name] = cls
    return cls


def algorithm_class(name: str) -> type[Recommender]:
    """The class registered under `name`; InputError naming the known ones otherwise."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise InputError(f"unknown algorithm {name!r} (known: {', '.join(ALGORITHMS)})") from None
