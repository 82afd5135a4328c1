"""Does the Spark path outgrow the driver? Merge, match and graph export at growing sizes, driver memory measured.

For each size, generated insurance data (about 2 records per customer, generated once and kept in the work
directory) goes through the three Spark steps as the CLI runs them, each a fresh process:

    c360 er merge  --sources SRC --out merged.parquet
    c360 er match  --input merged.parquet --engine spark --out matched.parquet
    c360 graph export --matched matched.parquet --sources SRC --out graph/

on `local[2]` with `spark.driver.maxResultSize=16m` (a driver that collects per-record data fails on it). Printed:
seconds and the Python driver's peak RSS (VmHWM of the c360 process; Spark's JVM is a separate process and not
counted), and the ratio of each step's peak at the largest size to the smallest. Goal: nothing fails on the
result-size limit, and the peak at 1M records is at most 1.3x the one at 100k.

Usage: python benchmarks/scale.py [--records 100000 300000 1000000] [--work DIR] [--steps merge match export]
       [--limit-via settings|submit-args]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
STEPS = ("merge", "match", "export")


def command(step: str, size_dir: Path) -> list[str]:
    """The CLI call of one step."""
    src, c360 = size_dir / "src", str(BIN / "c360")
    if step == "merge":
        return [c360, "er", "merge", "--sources", str(src), "--out", str(size_dir / "merged.parquet")]
    if step == "match":
        return [c360, "er", "match", "--input", str(size_dir / "merged.parquet"), "--engine", "spark",
                "--out", str(size_dir / "matched.parquet")]
    return [c360, "graph", "export", "--matched", str(size_dir / "matched.parquet"), "--sources", str(src),
            "--out", str(size_dir / "graph")]


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size so far (VmHWM), in MB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run_measured(cmd: list[str], env: dict, log: Path) -> tuple[int, float, float]:
    """Run `cmd`; return (exit code, seconds, peak RSS MB of that process), polling its VmHWM."""
    t = time.time()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, peak_rss_mb(proc.pid) or 0.0)
            time.sleep(0.1)
    return proc.returncode, time.time() - t, peak


def generated(size_dir: Path, records: int, seed: int) -> Path:
    """Insurance sources of about `records` merged records (generated once)."""
    src = size_dir / "src"
    if not (src / "truth.csv").is_file():
        from c360.entity_resolution.generate import generate

        t = time.time()
        info = generate(max(1, records // 2), seed=seed, out_dir=src)
        print(f"# generated {info['records']:,} records in {time.time() - t:.0f} s", flush=True)
    return src


def last_error(log: Path) -> str:
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    hits = [x for x in lines if "maxResultSize" in x or "Error" in x or "error" in x]
    return (hits or lines or ["?"])[-1][:160]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--max-result-size", default="16m")
    ap.add_argument("--limit-via", choices=("settings", "submit-args"), default="settings",
                    help="where the limit is set: the settings' spark_conf, or PYSPARK_SUBMIT_ARGS (outside the "
                         "settings, as spark-defaults.conf would be)")
    ap.add_argument("--work", type=Path, default=None, help="keeps generated data between runs")
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="c360-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "settings.yaml"
    limit = f"spark.driver.maxResultSize: '{a.max_result_size}'\n" if a.limit_via == "settings" else ""
    config.write_text(f"spark_master: '{a.master}'\n" + (f"spark_conf:\n  {limit}" if limit else ""))
    env = {**os.environ, "C360_CONFIG": str(config), "C360_WAREHOUSE": str(work / "warehouse")}
    if a.limit_via == "submit-args":
        env["PYSPARK_SUBMIT_ARGS"] = f"--conf spark.driver.maxResultSize={a.max_result_size} pyspark-shell"
    print(f"# master {a.master}, spark.driver.maxResultSize={a.max_result_size} (set in the {a.limit_via}), "
          f"work {work}")
    print("| records | step | seconds | driver peak RSS (MB) | result |")
    print("| ---: | --- | ---: | ---: | --- |")
    peaks: dict[str, dict[int, float]] = {s: {} for s in a.steps}
    for records in a.records:
        size_dir = work / f"r{records}"
        generated(size_dir, records, a.seed)
        for step in a.steps:
            log = size_dir / f"{step}.log"
            rc, seconds, peak = run_measured(command(step, size_dir), env, log)
            result = "ok" if rc == 0 else f"failed ({rc}): {last_error(log)}"
            if rc == 0:
                peaks[step][records] = peak
            print(f"| {records:,} | {step} | {seconds:.0f} | {peak:.0f} | {result} |", flush=True)
            if rc != 0:
                break
    lo, hi = min(a.records), max(a.records)
    print()
    print(f"| step | peak at {hi:,} / peak at {lo:,} | goal |")
    print("| --- | ---: | --- |")
    for step, by in peaks.items():
        ratio = f"{by[hi] / by[lo]:.2f}x" if lo in by and hi in by else "n/a (a run failed)"
        print(f"| {step} | {ratio} | <= 1.3x |")


if __name__ == "__main__":
    main()
