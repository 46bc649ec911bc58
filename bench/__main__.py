"""`python -m bench [--quick] [--only capture,latency,...] [--db sqlite,postgresql]`.

Prints one table of every figure next to its same-run baseline and target, and writes
bench/results/<benchmark>.json (…-quick.json for --quick). Exit status 0 even when targets
fail: benchmarks report, tests judge.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from bench.harness import Config, Row, pg_available, raise_fd_limit, table, write_json

BENCHMARKS = (
    "capture",
    "growth",
    "latency",
    "fanout",
    "hugelog",
    "storage",
    "navigation",
    "runs",
    "metrics",
    "ingest",
    "cli",
    "viewer",
)
# Parts of a benchmark above that --only can name alone (not run by default: they are in it).
PARTS = ("runs_delete",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite and/or postgresql")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(BENCHMARKS) - set(PARTS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    skipped: list[Row] = []
    if "postgresql" in dbs and (why := pg_available()):
        dbs.remove("postgresql")
        skipped.append(Row("all", "postgresql", "-", "-", target=why, status="SKIP"))
    config = Config(quick=args.quick, dbs=tuple(dbs))
    raise_fd_limit()

    all_rows = list(skipped)
    for name in names:
        started = time.monotonic()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        try:
            rows: list[Row] = module.run(config)
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            rows = [
                Row(
                    name,
                    "-",
                    "error",
                    "-",
                    target=f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}",
                    status="FAIL",
                )
            ]
        elapsed = time.monotonic() - started
        path = write_json(name, rows, config, {"seconds": elapsed})
        print(f"   {name}: {elapsed:.1f} s, {path.relative_to(path.parents[2])}", file=sys.stderr)
        all_rows.extend(rows)
    print(table(all_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
