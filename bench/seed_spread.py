#!/usr/bin/env python3
"""Accuracy of the randomised models over several seeds, Shoal and River.

An ensemble's prequential accuracy on a 10,000-row stream moves by a point
or more from one seed to the next (Poisson weights, feature subsets), and
Shoal and River draw their randomness from different generators, so one
seed per side compares two draws rather than two implementations. This
script runs each (stream, model) pair with the same list of seeds on both
sides, on the same file and rows, and reports every accuracy and the
median per side.

    .cache/venv/bin/python bench/seed_spread.py --shoal target/release/shoal-bench \\
        --models srp,lb --streams electricity,covertype --limit 10000 --seeds 1,2,3,4,5

Writes one JSON object per pair to stdout (and a markdown table to stderr
at the end). Timing is not reported: use compare_river.py for speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_river as cr  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shoal", default=str(cr.REPO / "target" / "release" / "shoal-bench"))
    ap.add_argument("--models", default="arf,srp,lb")
    ap.add_argument("--streams", default="electricity,covertype,sea,agrawal")
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--seeds", default="1,2,3,4,5")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in cr.MODELS or "seed=42" not in cr.MODELS[m][0]]
    if unknown:
        ap.error(f"not seeded models of compare_river.py: {unknown}")
    lines = ["| stream | model | rows | seeds | River median | Shoal median | diff pp | "
             "River range | Shoal range |", "|" + "---|" * 9]
    for name in [s for s in args.streams.split(",") if s]:
        source, kind = cr.STREAMS[name]
        if kind != "file":
            ap.error(f"{name}: only data files are supported here")
        path = cr.DATASETS / source
        limit = min(v for v in (args.limit, cr.STREAM_LIMITS.get(name)) if v is not None)
        labels = cr.class_labels(path, limit)
        for m in models:
            river, shoal = [], []
            for seed in seeds:
                sh = cr.run_shoal(args.shoal, cr.with_seed(cr.MODELS[m][0], seed), path, limit)
                if "error" in sh:
                    print(f"shoal failed: {sh['error']}", file=sys.stderr)
                    return 1
                rv = cr.run_river(m, path, limit, labels, seed)
                shoal.append(sh["accuracy"])
                river.append(rv["accuracy"])
                print(f"{name} / {m} seed {seed}: river {rv['accuracy']:.4f} "
                      f"shoal {sh['accuracy']:.4f}", file=sys.stderr, flush=True)
            rm, sm = statistics.median(river), statistics.median(shoal)
            print(json.dumps({"stream": name, "model": m, "rows": limit, "seeds": seeds,
                              "river": river, "shoal": shoal, "river_median": rm,
                              "shoal_median": sm}), flush=True)
            lines.append(f"| {name} | {m} | {limit} | {len(seeds)} | {rm:.4f} | {sm:.4f} | "
                         f"{(sm - rm) * 100:+.2f} | {min(river):.4f}-{max(river):.4f} | "
                         f"{min(shoal):.4f}-{max(shoal):.4f} |")
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
