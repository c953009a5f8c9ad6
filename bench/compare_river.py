#!/usr/bin/env python3
"""Side-by-side prequential comparison of Shoal and River.

For every (stream, model) pair both sides read the *same* CSV file, run the
same test-then-train loop (predict, score, learn) over the same rows, and are
timed the same way: wall time of the whole loop, reading and number parsing
included. Generator streams are first written with `shoal-bench export`, so
River does not use its own generators.

Usage (see bench/compare_river.sh, which sets up River and builds Shoal):

    python bench/compare_river.py --shoal target/release/shoal-bench \
        --out-md docs/benchmarks.md --out-json docs/benchmarks-river.json

Writes a markdown table between the `<!-- river-comparison:begin -->` and
`<!-- river-comparison:end -->` markers of the markdown file (appending them
if absent) and the raw numbers as JSON.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"

# name -> (source, kind). `file` sources are paths relative to the datasets
# folder; `gen` sources are shoal generator specs exported to CSV first.
STREAMS = {
    "electricity": ("electricity.csv.gz", "file"),
    "airlines": ("airlines.csv.gz", "file"),
    "covertype": ("covertype.csv.gz", "file"),
    "sea": ("sea.csv.gz", "file"),
    "agrawal": ("agrawal.csv.gz", "file"),
    "rbf_drift_gen": ("rbf_drift:n_classes=4,n_features=10,n_centroids=50,"
                      "change_speed=0.001,n_drift_centroids=25,seed=7,n=100000", "gen"),
    "hyperplane_gen": ("hyperplane:n_features=10,n_drift_features=5,mag_change=0.001,"
                       "noise=0.05,seed=7,n=100000", "gen"),
    "agrawal_drift_gen": ("drift:stream=agrawal:function=0|perturbation=0.05,"
                          "drift_stream=agrawal:function=4|perturbation=0.05,"
                          "position=50000,width=5000,seed=7,n=100000", "gen"),
}

# Rows per stream, the same for every model and both sides.
STREAM_LIMITS = {"airlines": 100_000}
# Tighter caps for slow River models (applied to both sides).
MODEL_LIMITS = {"knn": 20_000}

# Shoal spec, River model (binary), River model (multiclass, if different).
# River models are written as source text: it is both shown in the report
# and turned into the model by `river_model`. The ensembles run with River's
# defaults (ARF: 10 trees, sqrt(features) per split, lambda 6, ADWIN 0.001 /
# 0.01, grace period 50, delta 0.01; SRP: 10 trees, 60% subspaces, patches,
# lambda 6, ADWIN 1e-5 / 1e-4, trees with grace period 50, delta 0.01;
# leveraging bagging: 10 default Hoeffding trees, w 6, ADWIN 0.002), which
# Shoal's `arf`, `srp` and `lb` take as their defaults; only the seed is set.
MODELS = {
    "nb": ("nb", "naive_bayes.GaussianNB()", None),
    "lr": ("lr", "linear_model.LogisticRegression()", "linear_model.SoftmaxRegression()"),
    "ht": ("ht", "tree.HoeffdingTreeClassifier()", None),
    "hat": ("hat:seed=42", "tree.HoeffdingAdaptiveTreeClassifier(seed=42)", None),
    "efdt": ("efdt", "tree.ExtremelyFastDecisionTreeClassifier()", None),
    "knn": ("knn:n_neighbors=5,window_size=1000",
            "neighbors.KNNClassifier(n_neighbors=5, "
            "engine=neighbors.LazySearch(window_size=1000))", None),
    "arf": ("arf:seed=42", "forest.ARFClassifier(seed=42)", None),
    "srp": ("srp:seed=42", "ensemble.SRPClassifier(seed=42)", None),
    "lb": ("lb:seed=42", "ensemble.LeveragingBaggingClassifier("
           "model=tree.HoeffdingTreeClassifier(), seed=42)", None),
}


# What a run compares when `--models` is not given; the ensembles are run
# on their own (`--models arf,srp,lb --section ensembles`).
MAIN_MODELS = ["nb", "lr", "ht", "hat", "knn"]


def river_model(text: str, seed: int = 42):
    """Build the River model written as `text` (one of the MODELS entries),
    with its `seed=42` replaced by `seed`.

    The text is evaluated with only River's modules in scope; it comes from
    the MODELS table above, never from the command line.
    """
    from river import ensemble, forest, linear_model, naive_bayes, neighbors, tree

    known = {t for _, b, m in MODELS.values() for t in (b, m) if t is not None}
    if text not in known:
        raise ValueError(f"unknown River model {text!r}")
    scope = {"ensemble": ensemble, "forest": forest, "linear_model": linear_model,
             "naive_bayes": naive_bayes, "neighbors": neighbors, "tree": tree}
    text = text.replace("seed=42", f"seed={int(seed)}")
    return eval(text, {"__builtins__": {}}, scope)  # noqa: S307 - fixed table


def open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def to_value(field: str):
    """Numbers become floats, missing values are dropped, the rest stays text."""
    if field in ("", "?", "NA", "NaN", "nan"):
        return None
    try:
        return float(field)
    except ValueError:
        return field


def class_labels(path: Path, limit: int | None) -> list[str]:
    """Distinct labels of the last column, in order of appearance (untimed)."""
    seen: dict[str, None] = {}
    with open_text(path) as f:
        r = csv.reader(f)
        next(r)
        for i, row in enumerate(r):
            if limit is not None and i >= limit:
                break
            if row:
                seen.setdefault(row[-1].strip(), None)
    return list(seen)


def with_seed(spec: str, seed: int) -> str:
    """A Shoal spec of the MODELS table with its `seed=42` set to `seed`."""
    return spec.replace("seed=42", f"seed={int(seed)}")


def run_river(model_name: str, path: Path, limit: int | None, labels: list[str],
              seed: int = 42) -> dict:
    from river import metrics

    _, binary_ctor, multi_ctor = MODELS[model_name]
    binary = len(labels) <= 2
    ctor = binary_ctor if binary or multi_ctor is None else multi_ctor
    model = river_model(ctor, seed)
    # Binary River models expect bool targets (bool("0") would be True).
    positive = sorted(labels)[-1] if binary else None

    acc = metrics.Accuracy()
    kappa = metrics.CohenKappa()
    n = 0
    start = time.perf_counter()
    with open_text(path) as f:
        reader = csv.reader(f)
        names = [h.strip() for h in next(reader)]
        feats = names[:-1]
        for row in reader:
            if limit is not None and n >= limit:
                break
            if len(row) != len(names):
                continue
            x = {}
            for k, v in zip(feats, row):
                val = to_value(v.strip())
                if val is not None:
                    x[k] = val
            label = row[-1].strip()
            y = (label == positive) if binary else label
            y_pred = model.predict_one(x)
            acc.update(y, y_pred)
            kappa.update(y, y_pred)
            model.learn_one(x, y)
            n += 1
    seconds = time.perf_counter() - start
    try:
        model_bytes = int(model._raw_memory_usage)
    except Exception:  # memory accounting is best-effort on River's side
        model_bytes = None
    return {
        "model": ctor,
        "n": n,
        "accuracy": acc.get(),
        "kappa": kappa.get(),
        "seconds": seconds,
        "throughput": n / seconds if seconds > 0 else None,
        "model_bytes": model_bytes,
    }


def run_shoal(shoal: str, spec: str, path: Path, limit: int | None) -> dict:
    cmd = [shoal, "eval", "--model", spec, "--data", str(path), "--json", "--quiet"]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip(), "model": spec}
    r = json.loads(out.stdout)
    return {k: r.get(k) for k in
            ("model", "n", "accuracy", "kappa", "auc", "seconds", "throughput", "model_bytes")}


def median_run(runs: list[dict]) -> dict:
    """The run with the median time; every run's seconds are kept in `runs_seconds`."""
    ok = [r for r in runs if "error" not in r and r.get("seconds") is not None]
    if not ok:
        return runs[0]
    ok.sort(key=lambda r: r["seconds"])
    best = dict(ok[len(ok) // 2])
    if len(runs) > 1:
        best["runs_seconds"] = [r["seconds"] for r in ok]
    return best


def shoal_models(shoal: str) -> set[str]:
    out = subprocess.run([shoal, "models"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line and not line[0].isspace()}


def fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = ("| stream | model | rows | River acc | Shoal acc | diff pp | River kappa | "
            "Shoal kappa | River samples/s | Shoal samples/s | speed ratio | "
            "River bytes | Shoal bytes |")
    sep = "|" + "---|" * 13
    lines = [head, sep]
    for r in rows:
        rv, sh = r["river"], r["shoal"]
        if "error" in sh:
            lines.append(f"| {r['stream']} | {r['model']} | {rv.get('n')} | "
                         f"{fmt(rv.get('accuracy'), '.4f')} | error | | | | | | | | |")
            continue
        diff = (sh["accuracy"] - rv["accuracy"]) * 100
        ratio = (sh["throughput"] / rv["throughput"]
                 if sh.get("throughput") and rv.get("throughput") else None)
        lines.append(
            f"| {r['stream']} | {r['model']} | {sh['n']} | {rv['accuracy']:.4f} | "
            f"{sh['accuracy']:.4f} | {diff:+.2f} | {rv['kappa']:.4f} | {sh['kappa']:.4f} | "
            f"{fmt(rv['throughput'], ',.0f')} | {fmt(sh['throughput'], ',.0f')} | "
            f"{fmt(ratio, '.1f')}x | {fmt(rv['model_bytes'], ',')} | "
            f"{fmt(sh['model_bytes'], ',')} |")
    return "\n".join(lines)


def write_markdown(path: Path, body: str, section: str) -> None:
    """Replace the `<!-- river-SECTION:begin/end -->` block (append if absent)."""
    begin, end = f"<!-- river-{section}:begin -->", f"<!-- river-{section}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        pre = text[: text.index(begin)]
        post = text[text.index(end) + len(end):]
        text = pre + block + post
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shoal", default=str(REPO / "target" / "release" / "shoal-bench"))
    ap.add_argument("--streams", default=",".join(STREAMS))
    ap.add_argument("--models", default=",".join(MAIN_MODELS),
                    help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--limit", type=int, default=None,
                    help="cap every stream at this many rows (both sides)")
    ap.add_argument("--work", default=str(REPO / ".cache" / "compare"),
                    help="where exported generator streams go")
    ap.add_argument("--datasets", default=str(DATASETS),
                    help="folder of the data files (default: ../shared/datasets)")
    ap.add_argument("--out-md", default=str(REPO / "docs" / "benchmarks.md"))
    ap.add_argument("--out-json", default=None,
                    help="raw numbers; default docs/benchmarks-river.json for the "
                         "`comparison` section, docs/benchmarks-river-SECTION.json otherwise")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each side N times and report the median time (the runs "
                         "are deterministic, so accuracy is the same every time)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of the previous run (from the JSON file) that this "
                         "run did not redo; each row records the command and date that "
                         "produced it")
    ap.add_argument("--section", default="comparison",
                    help="write the table between <!-- river-SECTION:begin/end --> "
                         "(e.g. `--section ensembles --models arf,srp,lb`)")
    args = ap.parse_args()
    if not args.section.replace("-", "").replace("_", "").isalnum():
        ap.error("--section must be letters, digits, '-' or '_'")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.out_json is None:
        name = ("benchmarks-river.json" if args.section == "comparison"
                else f"benchmarks-river-{args.section}.json")
        args.out_json = str(REPO / "docs" / name)
    unknown = [m for m in args.models.split(",") if m and m not in MODELS]
    if unknown:
        ap.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")

    import river

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    available = shoal_models(args.shoal)
    models = [m for m in args.models.split(",") if m]
    missing = [m for m in models if MODELS[m][0].split(":")[0] not in available]
    if missing:
        print(f"shoal-bench lacks models {missing}; skipping them", file=sys.stderr)
    models = [m for m in models if m not in missing]

    rows = []
    for name in [s for s in args.streams.split(",") if s]:
        source, kind = STREAMS[name]
        if kind == "file":
            path = Path(args.datasets) / source
        else:
            path = work / f"{name}.csv"
            subprocess.run([args.shoal, "export", "--data", source, "--out", str(path),
                            "--nominal-index"], check=True, capture_output=True)
        for m in models:
            limits = [v for v in (args.limit, STREAM_LIMITS.get(name), MODEL_LIMITS.get(m))
                      if v is not None]
            limit = min(limits) if limits else None
            labels = class_labels(path, limit)
            print(f"{name} / {m} (limit {limit}) ...", file=sys.stderr, flush=True)
            # Alternate the sides run by run, so that a busy spell of the
            # machine falls on both rather than on one side's runs.
            sh_runs, rv_runs = [], []
            for _ in range(args.repeat):
                sh_runs.append(run_shoal(args.shoal, MODELS[m][0], path, limit))
                rv_runs.append(run_river(m, path, limit, labels))
            sh, rv = median_run(sh_runs), median_run(rv_runs)
            print(f"   river acc {rv['accuracy']:.4f} {rv['throughput']:.0f}/s | shoal "
                  f"{sh.get('accuracy', float('nan')):.4f} {sh.get('throughput') or 0:.0f}/s",
                  file=sys.stderr, flush=True)
            rows.append({"stream": name, "source": source, "model": m, "limit": limit,
                         "river": rv, "shoal": sh})

    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    # The command as run through compare_river.sh, which passes --shoal itself.
    argv, skip = [], False
    for a in sys.argv[1:]:
        if skip or a.startswith("--shoal="):
            skip = False
            continue
        if a == "--shoal":
            skip = True
            continue
        argv.append(shlex.quote(a))
    command = " ".join(["bash bench/compare_river.sh", *argv])
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    for r in rows:
        r["command"], r["date"], r["repeat"] = command.strip(), when, args.repeat
    if args.merge and Path(args.out_json).exists():
        old = json.loads(Path(args.out_json).read_text())
        redone = {(r["stream"], r["model"]) for r in rows}
        fresh = {(r["stream"], r["model"]): r for r in rows}
        merged = []
        for r in old.get("rows", []):
            r.setdefault("command", old.get("command", "?"))
            r.setdefault("date", old.get("date", "?"))
            key = (r["stream"], r["model"])
            merged.append(fresh.pop(key) if key in redone else r)
        merged.extend(r for r in rows if (r["stream"], r["model"]) in fresh)
        rows = merged
        models = list(dict.fromkeys(r["model"] for r in rows))
        runs = list(dict.fromkeys((r["command"], r["date"]) for r in rows))
        command = "; ".join(c for c, _ in runs)
        when = ", ".join(d for _, d in runs)
        produced = "Rows produced by " + "; ".join(
            f"`{c}` on {d}" for c, d in runs) + " (each row's command is in the JSON)"
    else:
        produced = f"Produced by `{command.strip()}` on {when}"
    caps = ", ".join(f"{k} at {v:,} rows" for k, v in STREAM_LIMITS.items())
    mcaps = ", ".join(f"{k} at {v:,} rows" for k, v in MODEL_LIMITS.items() if k in models)
    gens = "\n".join(f"- `{n}`: `shoal-bench export --data '{s}' --nominal-index`"
                     for n, (s, k) in STREAMS.items()
                     if k == "gen" and n in {r["stream"] for r in rows})
    body = (
        f"{produced} (River {river.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores, {cpu}).\n\n"
        f"Row caps (same on both sides): {caps}" + (f"; {mcaps}" if mcaps else "")
        + (f"; every stream at {args.limit:,} rows" if args.limit else "") + ".\n"
        f"Generated streams, exported once and read from the same CSV by both sides:\n{gens}\n\n"
        f"Models: {', '.join(f'{m} = `{MODELS[m][0]}` vs `{MODELS[m][1]}`' for m in models)}"
        + (" (multiclass lr: `linear_model.SoftmaxRegression()`)" if "lr" in models else "")
        + ".\n\n"
        + (f"Times are the median of {args.repeat} runs per side, the sides alternating "
           "run by run.\n\n" if args.repeat > 1 and not args.merge else "")
        + ("Times are the median of each row's `--repeat` runs per side (JSON: `repeat`).\n\n"
           if args.merge else "")
        + table(rows) + "\n"
    )
    write_markdown(Path(args.out_md), body, args.section)
    Path(args.out_json).write_text(json.dumps({"date": when, "command": command.strip(),
                                               "river_version": river.__version__,
                                               "rows": rows}, indent=1) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
