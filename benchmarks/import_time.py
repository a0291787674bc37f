"""Print how much import time provider modules add on top of `import airflow.sdk`.

Airflow re-imports DAG files constantly, and every hook/operator a DAG imports is paid each
time. For each module, fresh interpreters alternate between

    A: import airflow.sdk
    B: import airflow.sdk; import <module>

and the script prints the medians of A and B and their difference, plus the median of the
time `import <module>` itself took inside B (the least noisy figure). Figures only, no
pass/fail: timings belong in benchmarks, not in tests.

    python benchmarks/import_time.py                       # the hook
    python benchmarks/import_time.py airflow_predibase.operators airflow_predibase.sensors
    python benchmarks/import_time.py --runs 21 --detail airflow_predibase.hooks.predibase
    python benchmarks/import_time.py a.module,another.module   # a group, imported together

Modules that do not exist yet are skipped with a message.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile

BASELINE = "airflow.sdk"
DEFAULT_MODULES = ["airflow_predibase.hooks.predibase"]

# Prints two numbers: seconds spent importing the baseline, then the module (0 if none).
_PROBE = """
import sys, time
t0 = time.perf_counter()
import {baseline}
t1 = time.perf_counter()
for name in filter(None, sys.argv[1].split(",")):
    __import__(name)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _env() -> dict[str, str]:
    # A throwaway AIRFLOW_HOME, so the probe never writes into the user's ~/airflow.
    home = tempfile.mkdtemp(prefix="import-time-airflow-")
    env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    # An installed package imports from bytecode (pip compiles it): measure that, not the
    # compiler. A shell that sets PYTHONDONTWRITEBYTECODE would otherwise time compile().
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _probe(module: str, env: dict[str, str]) -> tuple[float, float]:
    code = _PROBE.format(baseline=BASELINE)
    out = subprocess.run(
        [sys.executable, "-c", code, module], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return float(out[-2]), float(out[-1])


def _exists(module: str) -> bool:
    """A comma-separated group exists when every member does."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in module.split(","))
    except ModuleNotFoundError:
        return False


def _added_modules(module: str, env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """The slowest modules (self time, µs) that importing `module` adds after the baseline."""
    imports = "; ".join(f"import {m}" for m in module.split(","))
    code = f"import {BASELINE}; import sys; print('---', file=sys.stderr); {imports}"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stderr
    added = err.split("---", 1)[-1].splitlines()
    rows = []
    for line in added:
        if line.startswith("import time:") and "|" in line:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            if self_us.strip().isdigit():
                rows.append((int(self_us), name.strip()))
    return sorted(rows, reverse=True)[:top]


def measure(module: str, runs: int, env: dict[str, str]) -> dict[str, float]:
    _probe(module, env)  # warm the OS file cache, not counted
    alone, together, inside = [], [], []
    for _ in range(runs):  # alternate, so drift affects both sides alike
        base, _ = _probe("", env)
        alone.append(base)
        base, mod = _probe(module, env)
        together.append(base + mod)
        inside.append(mod)
    a, b = statistics.median(alone), statistics.median(together)
    return {"alone": a, "together": b, "difference": b - a, "inside": statistics.median(inside)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=DEFAULT_MODULES)
    parser.add_argument("--runs", type=int, default=11, help="fresh processes per side")
    parser.add_argument("--detail", action="store_true", help="list the slowest added modules")
    args = parser.parse_args()
    env = _env()

    print(f"python {sys.version.split()[0]}, baseline `import {BASELINE}`, {args.runs} runs each")
    for module in args.modules:
        if not _exists(module):
            print(f"{module}: skipped, the module does not exist (not built yet?)")
            continue
        ms = {key: value * 1000 for key, value in measure(module, args.runs, env).items()}
        print(
            f"{module}: adds {ms['inside']:.1f} ms measured in-process "
            f"(median of A={ms['alone']:.0f} ms `import {BASELINE}`, "
            f"B={ms['together']:.0f} ms with the module: B-A={ms['difference']:+.1f} ms)"
        )
        if args.detail:
            for self_us, name in _added_modules(module, env, top=10):
                print(f"    {self_us / 1000:7.2f} ms  {name}")


if __name__ == "__main__":
    main()
