"""What a caller without the `pii` role sees of a customer: contact and identity fields masked, one rule per field
(`FIELD_MASKS`), the same wherever the field appears (a customer record, an address, a park account).

| field | reader sees | why |
| --- | --- | --- |
| ssn | `***-**-6789` | the last four digits, the industry's verification convention |
| date_of_birth | `1980-**-**` | the year tells customers apart; the full date is an identity key |
| home_phone | `***-***-0100` | the last four digits |
| address (street) | `***` | a home address is contact data; city and state stay |
| zip | `627**` | the first three digits (a region) |
| email | `***@example.com` | the domain only: the mailbox is contact data and an identity key |
| vin (and the vehicle's id, which holds it) | `*************4352` | the last four characters |
| an address's id (a hash of the address) | `address:1` | numbered within the answer |
| a park account's user id | `account:1` | numbered within the answer: account ids are `pii`'s (see below) |

A person's account ids are for `pii` only, here as in GET /recommendations' `identity`: with them a reader went from a
name (search, 360) to the ids whose live trip and events a key reads.

Names, company, city, state, policy lines, vehicle make, model and year, and a person's visits and recommendations
stay: they are what a reader needs to recognise a customer, and they are searchable anyway.
"""

from __future__ import annotations

import re
from typing import Any

_SSN = re.compile(r"\s*(\d{3})-?(\d{2})-?(\d{4})\s*")
_DATE = re.compile(r"\s*(\d{4})-\d{2}-\d{2}\s*")
VEHICLE_PREFIX = "vehicle:"


def mask_ssn(ssn: Any) -> Any:
    """`123-45-6789` (or `123456789`) → `***-**-6789`; anything that is not an SSN of that shape is masked
    whole, since its "last four digits" could be any four digits of it (`791-52-X555` is not `***-**-2555`)."""
    if not ssn:
        return ssn
    m = _SSN.fullmatch(str(ssn))
    return f"***-**-{m.group(3)}" if m else "***-**-****"


def mask_date(value: Any) -> Any:
    """`1980-04-02` → `1980-**-**`; any other shape whole."""
    if not value:
        return value
    m = _DATE.fullmatch(str(value))
    return f"{m.group(1)}-**-**" if m else "****-**-**"


def mask_phone(value: Any) -> Any:
    """The last four digits of a number of at least seven digits (`***-***-0100`), else masked whole."""
    if not value:
        return value
    digits = re.sub(r"\D", "", str(value))
    return f"***-***-{digits[-4:]}" if len(digits) >= 7 else "***"


def mask_whole(value: Any) -> Any:
    return "***" if value else value


def mask_zip(value: Any) -> Any:
    """The first three digits of a five-digit ZIP (`627**`), else masked whole."""
    if not value:
        return value
    digits = re.sub(r"\D", "", str(value))
    return f"{digits[:3]}**" if len(digits) >= 5 else "***"


def mask_vin(value: Any) -> Any:
    """All but the last four characters (`*************4352`); a value of eight or fewer whole."""
    if not value:
        return value
    text = str(value)
    return "*" * (len(text) - 4) + text[-4:] if len(text) > 8 else "***"


def mask_email(value: Any) -> Any:
    """The domain only (`***@example.com`); a value without one (`x@`, no `@`) masked whole."""
    if not value:
        return value
    _, at, domain = str(value).strip().rpartition("@")
    return f"***@{domain}" if at and domain else "***"


# one rule per field, wherever it appears
FIELD_MASKS = {"ssn": mask_ssn, "date_of_birth": mask_date, "home_phone": mask_phone, "address": mask_whole,
               "zip": mask_zip, "email": mask_email}


def _rules(*fields: str) -> dict:
    return {f: FIELD_MASKS[f] for f in fields}


RECORD_MASKS = _rules("ssn", "date_of_birth", "home_phone")
ADDRESS_MASKS = _rules("address", "zip")
ACCOUNT_MASKS = _rules("date_of_birth", "home_phone", "email", "zip")
ACCOUNT_PREFIX = "account:"
# the compared fields a caller without pii sees masked: in a match they count only when equal (no "one edit away")
MASKED_FIELDS = tuple(FIELD_MASKS)


def _masked(row: dict, masks: dict) -> dict:
    return {k: masks[k](v) if k in masks else v for k, v in row.items()}


def mask_fields(row: dict) -> dict:
    """A record's fields as a caller without `pii` sees them, whatever its source: every rule of FIELD_MASKS."""
    return _masked(row, FIELD_MASKS)


def _vehicle(v: dict) -> dict:
    out = {**v, "vin": mask_vin(v.get("vin"))}
    vid = str(v.get("id") or "")
    if vid.startswith(VEHICLE_PREFIX):
        out["id"] = VEHICLE_PREFIX + str(mask_vin(vid[len(VEHICLE_PREFIX):]))
    return out


def mask_customer360(result: dict) -> dict:
    """A customer 360 answer as a caller without `pii` sees it. Address ids are numbered within the answer
    (`address:1`, ... in order of appearance; one address keeps one number): the graph's id is a hash of the
    address, which a list of streets and ZIPs reverses. Park accounts' user ids likewise (`account:1`, ...)."""
    numbers: dict[str, str] = {}

    def address(a: dict) -> dict:
        out = _masked(a, ADDRESS_MASKS)
        if "id" in a:
            out["id"] = numbers.setdefault(str(a["id"]), f"address:{len(numbers) + 1}")
        return out

    customers = []
    for c in result.get("customers", []):
        own = [address(a) for a in c.get("addresses", [])]
        policies = [{**p, "addresses": [address(a) for a in p.get("addresses", [])],
                     "vehicles": [_vehicle(v) for v in p.get("vehicles", [])]} for p in c.get("policies", [])]
        customers.append({**_masked(c, RECORD_MASKS), "addresses": own, "policies": policies})
    accounts = [{**_masked(a, ACCOUNT_MASKS), "user_id": f"{ACCOUNT_PREFIX}{i}"}
                for i, a in enumerate(result.get("accounts", []), start=1)]
    return {**result, "customers": customers, **({"accounts": accounts} if "accounts" in result else {})}


def mask_search_hit(hit: dict) -> dict:
    """A search hit as a caller without `pii` sees it (the birth date's year only)."""
    return {**hit, "date_of_birth": mask_date(hit.get("date_of_birth"))}
