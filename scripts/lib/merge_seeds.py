"""Merge the results files of one configuration trained with several seeds.

    python3 scripts/lib/merge_seeds.py OUT.json COMMAND SEED_RESULT.json...

OUT.json is the first seed's file (its history, config, by-length table, report) with, beside
its "metrics": "seeds" (the seeds, in order), "metrics_mean" and "metrics_sd" (sample standard
deviation, n - 1) of every metric all the runs have, and "runs" (each seed's metrics, best
epoch and training time). "baselines" come from the first file that has them (they do not
depend on the model's seed). COMMAND is the command that made all of it.
"""

import json
import statistics
import sys


def main() -> None:
    out, command, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    if len(paths) < 2:
        sys.exit("merge_seeds: need at least two seeds' results files")
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append(json.load(f))
    seeds = [r["config"]["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"merge_seeds: the same seed twice in {seeds}")
    keys = [k for k in runs[0]["metrics"] if all(k in r["metrics"] for r in runs)]
    digits = {k: 2 if k.endswith(("p@20", "mrr@20")) else 4 for k in keys}
    merged = dict(runs[0])
    merged["command"] = command
    merged["seed_command"] = runs[0]["command"]
    merged["seeds"] = seeds
    merged["metrics_mean"] = {
        k: round(statistics.fmean(r["metrics"][k] for r in runs), digits[k]) for k in keys
    }
    merged["metrics_sd"] = {
        k: round(statistics.stdev(r["metrics"][k] for r in runs), digits[k] + 1) for k in keys
    }
    merged["runs"] = [
        {
            "seed": r["config"]["seed"],
            "metrics": r["metrics"],
            "best_epoch": r["best_epoch"],
            "epochs_run": len(r["history"]),
            "train_seconds": r["train_seconds"],
            "valid_mrr@20_best": max(
                (h["valid"]["mrr_at_20"] for h in r["history"] if h.get("valid")), default=None
            ),
        }
        for r in runs
    ]
    merged["baselines"] = next((r["baselines"] for r in runs if r.get("baselines")), {})
    with open(out, "w") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")
    mean, sd = merged["metrics_mean"], merged["metrics_sd"]
    shown = [k for k in ("p@20", "mrr@20", "hr@10", "ndcg@10") if k in mean]
    print(f"{out}: seeds {seeds}: " + ", ".join(f"{k} {mean[k]} ± {sd[k]}" for k in shown))


if __name__ == "__main__":
    main()
