#!/usr/bin/env python3
"""Run the Rust detection benchmarks and scikit-learn on the same CSV, in one
run, and print the ratios.

    apt-get install python3-sklearn        # Debian's scikit-learn and numpy
    /usr/bin/python3 phantomnet-agent/benches/sklearn_compare.py \
        --csv models/lab-dataset.csv.gz --model models/model-v1.pnm

Steps: (1) `cargo bench --bench detection` with PN_BENCH_CSV=<csv> (the bench
generates the CSV from a simulated, seeded lab capture if it does not exist,
trains a 200-tree forest on it and measures; with --model it loads that
artifact instead, PN_BENCH_MODEL, and the CSV must be of its schema); (2) scikit-learn's
RandomForestClassifier(n_estimators=200) and IsolationForest(n_estimators=100,
contamination=0.1) are trained on the same rows (standard-scaled, like the
Rust model) and timed the same way (single row, batch of 1000); (3) the
criterion medians are read from target/criterion/*/new/estimates.json and the
ratios printed, with the issue's two targets checked.
"""

import argparse
import glob
import gzip
import json
import os
import statistics
import subprocess
import sys
import time


def open_text(path):
    """A CSV, plain or gzip-compressed (told by its magic bytes, as the agent's
    `read_csv` tells them): models/lab-dataset.csv.gz is compressed."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gz else open(path)


def criterion_median_ns(target_dir, bench_id):
    # criterion stores "group/name" under "group_name".
    pattern = os.path.join(target_dir, "criterion", bench_id.replace("/", "_"), "new", "estimates.json")
    hits = glob.glob(pattern)
    if not hits:
        sys.exit(f"no criterion estimates for {bench_id} at {pattern}")
    with open(hits[0]) as f:
        return json.load(f)["median"]["point_estimate"]


def time_ns(fn, repeats):
    times = []
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        fn(i)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times)


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default="/tmp/phantomnet-bench.csv")
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target")))
    ap.add_argument("--model", help="a model artifact the Rust side loads instead of training (PN_BENCH_MODEL)")
    ap.add_argument("--skip-cargo", action="store_true", help="reuse the last criterion results")
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args()

    if not args.skip_cargo:
        env = dict(os.environ, PN_BENCH_CSV=os.path.abspath(args.csv), AYA_BUILD_SKIP="1",
                   CARGO_TARGET_DIR=args.target_dir)
        env.pop("PN_BENCH_MODEL", None)
        if args.model:
            env["PN_BENCH_MODEL"] = os.path.abspath(args.model)
        cmd = ["cargo", "bench", "-p", "phantomnet-agent", "--bench", "detection", "--",
               "flow/update|forest/|smartcore/|iforest/|detect/full_path"]
        print("+", " ".join(cmd), f"(PN_BENCH_CSV={args.csv}, PN_BENCH_MODEL={args.model})", flush=True)
        subprocess.run(cmd, cwd=repo, env=env, check=True)

    import numpy as np
    import sklearn
    from sklearn.ensemble import IsolationForest, RandomForestClassifier
    from sklearn.preprocessing import StandardScaler

    # The features are the columns before `label` (any schema); `label` is
    # 0 or 1; anything after it (`attack_type`) is not read.
    with open_text(args.csv) as f:
        header = f.readline().strip().split(",")
    width = header.index("label")
    with open_text(args.csv) as f:
        data = np.genfromtxt(f, delimiter=",", skip_header=1, usecols=range(width + 1))
    X, y = data[:, :width], data[:, width].astype(int)
    X = StandardScaler().fit_transform(X)
    print(f"\nscikit-learn {sklearn.__version__}, numpy {np.__version__}: {len(X)} rows of {width} features, "
          f"{y.sum()} attack", flush=True)

    t0 = time.perf_counter()
    rf = RandomForestClassifier(n_estimators=200, random_state=42, n_jobs=None).fit(X, y)
    print(f"RandomForestClassifier(200) fit in {time.perf_counter() - t0:.1f} s, "
          f"{sum(e.tree_.node_count for e in rf.estimators_)} nodes")
    iso = IsolationForest(n_estimators=100, contamination=0.1, random_state=42).fit(X)

    n = len(X)
    batch = X[:1000]
    rf.predict_proba(X[:1])  # warm up
    sk = {
        "forest/single_row": time_ns(lambda i: rf.predict_proba(X[i % n : i % n + 1]), 300),
        "forest/batch_1000": time_ns(lambda i: rf.predict_proba(batch), 20),
        "iforest/single_row": time_ns(lambda i: iso.score_samples(X[i % n : i % n + 1]), 300),
    }

    rust = {k: criterion_median_ns(args.target_dir, k) for k in
            ["flow/update", "forest/single_row", "forest/batch_1000", "iforest/single_row",
             "detect/full_path"]}
    # A loaded artifact holds no smartcore forest, so the bench leaves that row out.
    rust["smartcore/single_row"] = None if args.model else criterion_median_ns(
        args.target_dir, "smartcore/single_row")

    rows = [
        ("flow-state update (one sample)", rust["flow/update"], None),
        ("forest, single row (200 trees)", rust["forest/single_row"], sk["forest/single_row"]),
        ("forest, batch of 1000 rows", rust["forest/batch_1000"], sk["forest/batch_1000"]),
        ("smartcore predict, single row", rust["smartcore/single_row"], None),
        ("isolation forest, single row", rust["iforest/single_row"], sk["iforest/single_row"]),
        ("full per-sample path", rust["detect/full_path"], None),
    ]
    lines = ["| measurement | PhantomNet (criterion median) | scikit-learn (median) | ratio |",
             "|---|---:|---:|---:|"]
    for name, r, s in rows:
        if r is None:
            continue
        lines.append(f"| {name} | {fmt(r)} | {fmt(s) if s else '—'} | {f'{s / r:,.0f}×' if s else '—'} |")
    table = "\n".join(lines)
    print()
    print(table)
    ratio = sk["forest/single_row"] / rust["forest/single_row"]
    p50 = rust["detect/full_path"]
    checks = [
        f"single-row forest ≥ 500× faster than scikit-learn predict_proba: {ratio:,.0f}× -> {'PASS' if ratio >= 500 else 'FAIL'}",
        f"full per-sample path p50 < 20 µs: {fmt(p50)} -> {'PASS' if p50 < 20_000 else 'FAIL'}",
    ]
    print()
    print("\n".join(checks))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n\n" + "\n".join(f"- {c}" for c in checks) + "\n")
    return 0 if ratio >= 500 and p50 < 20_000 else 1


if __name__ == "__main__":
    sys.exit(main())
