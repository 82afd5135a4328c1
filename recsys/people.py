"""The persons serving answers for: the accounts of one person in the served run's identities (the accounts the
nightly's match joined, `c360.recsys.identities`), and the accounts committed since (POST /customers/match with
commit) whose match is certain and whose match_id is one of those persons, until the next nightly joins them for good.

`People` answers, per account, its person's accounts (itself first) and how much of each other account's activity
serves it (`weights_for`: the weights the models trained with, `Identities.weights_for`), and the identity an answer
shows a caller with a key: `{match_id, accounts, account_count}`, the other accounts' ids only to a caller who may
see them (`pii`). A caller without a key is shown no identity at all (`c360.recsys.serving`): which accounts are one
person, and the match_id that names them, are not public. The identity a key without `pii` sees is serialized
once per person (`public_json`: a dict lookup), again for the accounts of a person a committed account joins.

A committed account joins its person only when its match is certain (`certain`): the weight the nightly would give
its link is 1, i.e. its match probability is at least MARGIN nats of log-odds above the match threshold. A merely
probable one (at the threshold, say) stays its own person until the nightly weighs its link with every scored pair:
until then it would be answered wholly from a stranger's history. A certain join weighs 1.

A person of more than MAX_ACCOUNTS accounts (a bad match: a shared phone, a placeholder SSN, a commit loop) is no
person for serving: each of its accounts is answered alone (no identity, no other account's live events), and a
commit that would take a person past MAX_ACCOUNTS joins nothing. One answer's work and size stay bounded.

Joins come from the customers log's reader (`join`, under its lock); readers take no lock: each map is replaced or
updated one entry at a time, never left half-built.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Container, Mapping

import numpy as np
import orjson

from .identities import MAX_ACCOUNTS, Identities, link_weight

NULL = b"null"

log = logging.getLogger("c360.recsys.people")


def _public(person: str, count: int) -> bytes:
    return orjson.dumps({"match_id": person, "accounts": None, "account_count": count})


class People:
    """Account -> person for serving: the run's identities plus the accounts committed since that joined one of its
    persons (thread-safe; see the module's docstring)."""

    def __init__(self, identities: Identities, trained: Container[str] = frozenset()):
        self.identities = identities
        self._trained = trained   # the accounts the run's models have a history of: the nightly matches them
        linked = identities.table.loc[identities.table["WEIGHT"] > 0, ["USER_ID", "PERSON_ID", "WEIGHT"]]
        users, persons = linked["USER_ID"].tolist(), linked["PERSON_ID"].tolist()
        self._person: dict[str, str] = dict(zip(users, persons, strict=True))
        self._weight: dict[str, float] = dict(zip(users, linked["WEIGHT"].astype(float).tolist(), strict=True))
        members: dict[str, list[str]] = {}
        for user, person in zip(users, persons, strict=True):
            members.setdefault(person, []).append(user)
        oversized = {p for p, m in members.items() if len(m) > MAX_ACCOUNTS}
        if oversized:  # counts only: which accounts were merged is not for the log
            log.warning("%d person(s) of the identities have more than %d accounts (at most %d): a bad match; "
                        "each of their accounts is served alone", len(oversized), MAX_ACCOUNTS,
                        max(len(members[p]) for p in oversized))
            for p in oversized:
                for user in members.pop(p):
                    del self._person[user], self._weight[user]
        self.oversized = len(oversized)
        self._members: dict[str, tuple[str, ...]] = {p: tuple(sorted(m)) for p, m in members.items()}
        self._joined: dict[str, str] = {}          # committed account -> the person it joined (weight 1: certain)
        self._lock = threading.Lock()
        # the identity a caller with a key but without pii sees, per account of a person with several (absent: null)
        self._public_json: dict[str, bytes] = {}
        for person, accounts in self._members.items():
            if len(accounts) > 1:
                fragment = _public(person, len(accounts))
                self._public_json.update(dict.fromkeys(accounts, fragment))
        # whether accounts may have been committed that `join` has not been told of yet (the customers log's reader
        # sets it): an account no model knows is then not answered as a stranger before they are read
        self.behind: Callable[[], bool] = lambda: False

    def __len__(self) -> int:
        return len(self._person) + len(self._joined)

    def person_of(self, account: str) -> str | None:
        """The person (match_id) of an account of the identities or committed since; None for any other."""
        return self._person.get(account) or self._joined.get(account)

    def accounts_of(self, account: str) -> list[str]:
        """The accounts of the account's person, itself first (just itself when it has no person)."""
        person = self.person_of(account)
        if person is None:
            return [account]
        return [account, *(b for b in self._members[person] if b != account)]

    def has_others(self, account: str) -> bool:
        """Whether the account's person has other accounts."""
        return account in self._public_json

    def weights_for(self, account: str) -> dict[str, float]:
        """{b: w_ab} for every account b of the person (the account itself weighs 1): min of the two accounts'
        weights, as in training."""
        w_a = self._weight_of(account)
        return {b: 1.0 if b == account else min(w_a, self._weight_of(b)) for b in self.accounts_of(account)}

    def _weight_of(self, account: str) -> float:
        return self._weight.get(account, 1.0)  # an account that joined since the run: its match was certain

    def public_json(self, account: str) -> bytes:
        """The identity JSON a caller with a key but without pii sees (`null` for an account with no other
        account)."""
        return self._public_json.get(account, NULL)

    def identity(self, account: str, pii: bool) -> dict | None:
        """{match_id, accounts (pii only, else None), account_count}, or None for an account with no other one."""
        if not self.has_others(account):
            return None
        accounts = self.accounts_of(account)
        return {"match_id": self.person_of(account), "accounts": accounts if pii else None,
                "account_count": len(accounts)}

    def identity_json(self, account: str, pii: bool) -> bytes:
        return self.public_json(account) if not pii else (NULL if not self.has_others(account)
                                                          else orjson.dumps(self.identity(account, True)))

    def certain(self, probability, threshold) -> bool:
        """Whether a commit's match is certain: the weight the nightly would give a link of this probability
        at the match's `threshold` is 1 (its log-odds at least `margin` nats above the threshold's). False for
        a probability or threshold that is missing or not a number in [0, 1] (a log line of an older version)."""
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0 <= x <= 1
                   for x in (probability, threshold)):
            return False
        ids = self.identities
        return float(link_weight([float(probability)], float(threshold), ids.w_min, ids.margin)[0]) >= 1.0 - 1e-9

    def join(self, account: str, match_id, probability=None, threshold=None) -> bool:
        """A committed account of match_id, matched with `probability` at the match's `threshold`: it joins that
        person when the match is certain (`certain`), the identities have the person and it has fewer than
        MAX_ACCOUNTS accounts (True); anything else changes nothing (False): an account they have already or the
        run's models have a history of, a match_id that is no person of theirs, a match that is only probable, a
        person that is full."""
        account, person = str(account), str(match_id)
        if not self.certain(probability, threshold) or account in self._trained:
            return False
        with self._lock:
            if (account in self._person or account in self._joined or person not in self._members
                    or len(self._members[person]) >= MAX_ACCOUNTS):
                return False
            accounts = tuple(sorted((*self._members[person], account)))
            self._members[person] = accounts          # first the members, then who belongs: a reader never
            self._joined[account] = person            # finds an account whose person does not list it
            self._public_json.update(dict.fromkeys(accounts, _public(person, len(accounts))))
        return True


def person_history(model, weights: Mapping[str, float]) -> dict[str, float]:
    """{ITEM_ID: value}: the `weights`-weighted mean of the training rows of the accounts the model has a row for
    (each row already its person's shared history), as `identities.recommend_linked` serves an account without a
    row; {} when none has one."""
    import scipy.sparse as sp

    index = model.user_index
    lenders = {b: w for b, w in weights.items() if w > 0 and b in index}
    if not lenders:
        return {}
    w = np.fromiter(lenders.values(), dtype=np.float64)
    row = (sp.csr_matrix(w / w.sum()) @ model.matrix[[index[b] for b in lenders]]).tocsr()
    row.eliminate_zeros()
    item_ids = model.item_ids
    return {item_ids[j]: float(v) for j, v in zip(row.indices.tolist(), row.data.tolist(), strict=True)}
