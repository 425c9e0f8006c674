"""Run the benchmarks and merge their figures into bench/results.json.

    python -m bench.run                 # every part
    python -m bench.run split routing   # only these parts
    python -m bench.run --quick         # smaller sizes, for a smoke run

Each part is a list of modules exposing ``run(quick: bool) -> dict`` of flat keys; a part that
fails is reported with its error and the others still run. Figures of parts not run this time
are kept from the previous results file, with the time they were measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

PARTS: dict[str, list[str]] = {
    "split": ["bench.split_planner", "bench.split"],
    "routing": ["bench.routing_classifier", "bench.routing_gateway"],
    "adaptation": ["bench.adaptation"],
    "placement": ["bench.placement"],
    "links": ["bench.split_links"],
}
RESULTS = Path(__file__).resolve().parent / "results.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("parts", nargs="*", help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    figures: dict = results.get("figures", {})
    runs: dict = results.get("runs", {})
    failed = False
    for part in args.parts or list(PARTS):
        for module_name in PARTS[part]:
            started = time.perf_counter()
            print(f"[bench] {module_name} ...", flush=True)
            try:
                module = importlib.import_module(module_name)
                measured = module.run(quick=args.quick)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                print(f"[bench] {module_name}: not present, skipped", flush=True)
                continue
            except Exception:  # noqa: BLE001 - one broken part must not hide the others
                failed = True
                runs[module_name] = {"error": traceback.format_exc(limit=5), "at": _now()}
                print(f"[bench] {module_name} FAILED:\n{traceback.format_exc()}", flush=True)
                continue
            figures.update(measured)
            runs[module_name] = {
                "at": _now(),
                "seconds": round(time.perf_counter() - started, 1),
                "quick": args.quick,
                "keys": sorted(measured),
            }
            for key, value in sorted(measured.items()):
                print(f"  {key:<40} {value}", flush=True)
    results = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "figures": dict(sorted(figures.items())),
        "runs": runs,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"[bench] wrote {RESULTS}")
    return 1 if failed else 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
