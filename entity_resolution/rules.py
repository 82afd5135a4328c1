"""The standardization rules, declared once: what each field type makes of a raw value, as a short list of
operations. Three interpreters read these declarations and nothing else:

- `standardize.standardize_record` (one record in Python, served by the online matcher) and `standardize.standardize`
  (a pandas frame, the same Python per distinct value);
- `standardize_sql.standardize_query` (the SELECT of the standardized table in Spark SQL or DuckDB).

A rule is `Rule(steps, outputs)`: `steps` turn the raw value into the field's value (a missing value stops the
chain: it stays missing), and each output column applies its own few operations to that value (`""`: the field's
own column; `"_canon"`, `"_swapped"`, ...: derived columns). The operations (`Op.name`) form a small vocabulary that
each interpreter implements once; to add a rule, compose them in `field_rule`; to add an operation, add it to
OPERATIONS here and to both interpreters (tests/entity_resolution/test_engines_agree.py checks they know every one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from c360.entity_resolution.config import Field
from c360.entity_resolution.names import NICKNAMES

# separators an identifier or postcode loses ('123-45 6789', '(555) 010.0199')
SEPARATORS = r"[\s\-().+/_]"
NON_DIGITS = r"\D"                     # what a phone loses
DIGITS = r"\d+"                        # an all-digit value (zero-padded to the field's width)
EMAIL = r"[^@]+@[^@]+"                 # a readable email: one @ with text on both sides
EMAIL_USER = r"([^@]+)@[^@]+"          # ... and its part before the @
TRAILING_ZERO = r"\.0$"                # a date read from a numeric column (19800105.0)
ISO_DATE = "%Y-%m-%d"                  # the standardized date's text
SWAPPED_DATE = "%Y-%d-%m"              # ... and with day and month exchanged (when the day could be a month)
# nickname -> full first name (lower case): 'bob' and 'robert' agree on first_name_canon
TABLES = {"nicknames": {v.lower(): k.lower() for k, v in NICKNAMES.items()}}

# operation -> what it does to a present value (None: the value is missing from there on)
OPERATIONS = {
    "clean": "text trimmed, lower-case, single-spaced, an integer's '.0' (a numeric CSV column) dropped; '' missing",
    "strip": "text without leading and trailing whitespace",
    "upper": "upper case",
    "remove": "every match of the regex args[0] removed",
    "null_if_empty": "'' is missing",
    "zfill_digits": "an all-digit value left-padded with zeros to args[0] characters",
    "fullmatch": "group args[1] of a full match of the regex args[0]; no match is missing",
    "drop_last": "without the last args[0] characters; shorter than args[1] characters is missing",
    "lookup": "the value's entry in TABLES[args[0]], or the value",
    "parse_date": "the date the text reads in the strftime format args[0] (within pandas' datetime range); else missing",
    "date_text": "a date as text in the strftime format args[0]",
    "day_at_most": "a date whose day is at most args[0]; else missing",
    "to_double": "the number the value reads as (a double); else missing",
}


@dataclass(frozen=True)
class Op:
    name: str
    args: tuple = ()

    def __post_init__(self):
        if self.name not in OPERATIONS:
            raise ValueError(f"unknown standardization operation {self.name!r}")


@dataclass(frozen=True)
class Rule:
    """A field's standardization: `steps` from the raw value (text, unless `text` is False) to the field's value,
    then per output column (suffix of the field's name) its operations on that value."""

    steps: tuple[Op, ...]
    outputs: tuple[tuple[str, tuple[Op, ...]], ...]
    text: bool = True


CLEAN = Op("clean")


@lru_cache(maxsize=None)
def field_rule(f: Field, date_format: str) -> Rule:
    """The rule of one field (`date_format`: the config's default for date fields without their own)."""
    if f.type == "date":
        return Rule((Op("strip"), Op("remove", (TRAILING_ZERO,)), Op("parse_date", (f.date_format or date_format,))),
                    (("", (Op("date_text", (ISO_DATE,)),)),
                     ("_swapped", (Op("day_at_most", (12,)), Op("date_text", (SWAPPED_DATE,))))))
    if f.type in ("identifier", "postcode", "phone"):
        steps = [CLEAN, Op("upper"), Op("remove", (NON_DIGITS if f.type == "phone" else SEPARATORS,)),
                 Op("null_if_empty")]
        if f.pad:
            steps.append(Op("zfill_digits", (f.pad,)))
        if f.pattern:
            steps.append(Op("fullmatch", (f.pattern, 1 if re.compile(f.pattern).groups else 0)))
        head = (("_head", (Op("drop_last", (2, 5)),)),) if f.type == "identifier" else ()
        return Rule(tuple(steps), (("", ()), *head))
    if f.type == "email":
        return Rule((CLEAN, Op("remove", (" ",)), Op("fullmatch", (EMAIL, 0))),
                    (("", ()), ("_user", (Op("fullmatch", (EMAIL_USER, 1)),))))
    if f.type == "numeric":
        return Rule((Op("to_double"),), (("", ()),), text=False)
    if f.type == "name" and f.nicknames:
        return Rule((CLEAN,), (("", ()), ("_canon", (Op("lookup", ("nicknames",)),))))
    return Rule((CLEAN,), (("", ()),))  # name, fuzzy, exact
