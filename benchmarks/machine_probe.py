"""How fast this machine is right now, for the kinds of work the test suite does: read a suite's time beside it.

The same code's suite took 7 min 44 s and 10 min 44 s on the same 2-core machine on one day, and CI 466 s and 650 s
for two stops a day apart: the host's load moves JVM-heavy work far more than pure Python. Three probes, each a
fixed amount of work, measured as CPU seconds of the whole machine (run it on an otherwise idle machine):

- `python`: an interpreter loop (2e7 multiplications), one core;
- `page faults`: 1 GiB of fresh anonymous memory touched page by page (every new JVM heap and Python process pays
  these), in microseconds per 4 KiB page;
- `spark match`: the Splink match on Spark of 80 generated people (about 400 records) in a fresh local[2] JVM with
  the test session's JVM options (tests/conftest.py: TEST_JVM_OPTIONS), start to finish, the shape of most of the
  suite's time.

Usage: python benchmarks/machine_probe.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import mmap
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import TEST_JVM_OPTIONS  # noqa: E402

SPARK_MATCH = """
import sys
from pathlib import Path
from c360.entity_resolution.generate import generate
from c360.entity_resolution.match import match
from c360.entity_resolution.merge import merge
from c360.settings import Settings
from c360.spark import get_spark
d = Path(sys.argv[1])
generate(80, seed=5, out_dir=d / "src")
merge(d / "src", d / "merged.parquet")
spark = get_spark(Settings(spark_master="local[2]", spark_conf={"spark.sql.shuffle.partitions": "4",
                                                                "spark.default.parallelism": "4"}),
                  checkpoint_dir=str(d / "checkpoints"))
match([d / "merged.parquet"], engine="spark", out=str(d / "matched.parquet"), spark=spark, u_max_pairs=5e4)
spark.stop()
"""


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (user, nice, system) since boot."""
    with open("/proc/stat") as fh:
        user, nice, system = (int(x) for x in fh.readline().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def python_loop() -> float:
    start = time.process_time()
    sum(i * i for i in range(20_000_000))
    return time.process_time() - start


def page_fault_us() -> float:
    size, page = 1 << 30, 4096
    start = time.process_time()
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for offset in range(0, size, page):
        memory[offset] = 1
    memory.close()
    return (time.process_time() - start) / (size // page) * 1e6


def spark_match() -> tuple[float, float]:
    """(wall seconds, busy CPU seconds of the machine) of the Spark match in a fresh process and JVM."""
    env = {**os.environ, "JAVA_TOOL_OPTIONS": TEST_JVM_OPTIONS, "C360_SPARK_MASTER": "local[2]"}
    with tempfile.TemporaryDirectory(prefix="machine-probe-") as d:
        wall, busy = time.time(), busy_seconds()
        subprocess.run([sys.executable, "-c", SPARK_MATCH, d], check=True, env=env, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.time() - wall, busy_seconds() - busy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} cores")
    print("| probe | " + " | ".join(f"run {i + 1}" for i in range(a.repeat)) + " |")
    print("| --- |" + " --- |" * a.repeat)
    rows = {"python loop (CPU s)": [], "page fault (µs per 4 KiB)": [], "spark match (wall s)": [],
            "spark match (busy CPU s)": []}
    for _ in range(a.repeat):
        rows["python loop (CPU s)"].append(python_loop())
        rows["page fault (µs per 4 KiB)"].append(page_fault_us())
        wall, busy = spark_match()
        rows["spark match (wall s)"].append(wall)
        rows["spark match (busy CPU s)"].append(busy)
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")


if __name__ == "__main__":
    main()
