"""The ensemble-distillation report: `ensemble_kd.DATASET` in results/distill.json and
docs/distill-ensemble.md (written by scripts/distill-ensemble).

    python3 scripts/lib/ensemble_kd.py DATASET COMMAND TEACHER.json STUDENTS.json \
        'label=glob;label=glob' BROWSER_WEIGHTS_FILE
    python3 scripts/lib/ensemble_kd.py DATASET COMMAND TEACHER.json - NOTE -   (teacher only)

TEACHER.json: `sessionrank eval` of the ensemble (its "metrics", "bundles"). STUDENTS.json: the
students' seeds merged by scripts/lib/merge_seeds.py. Each `label=glob` names the same student's
results without a teacher, one file per seed. The checks are issue 20's: a student keeps
>= 95% of its teacher and gains >= 2% over the student without it, on the dataset's headline
metric (Diginetica MRR@20, Beauty NDCG@10).
"""

import glob
import json
import os
import statistics
import sys

HEADLINE = {"diginetica": "mrr@20", "amazon-beauty": "ndcg@10"}
SHOWN = ("p@20", "mrr@20", "hr@10", "ndcg@10")
KEEP, GAIN = 0.95, 1.02
DISTILL_JSON = "results/distill.json"


def load(path):
    with open(path) as f:
        return json.load(f)


def digits(key):
    return 2 if key.endswith(("p@20", "mrr@20")) else 4


def seeded(files):
    """mean ± sd of every metric the files share, and each seed's figures."""
    runs = [load(p) for p in files]
    keys = [k for k in runs[0]["metrics"] if all(k in r["metrics"] for r in runs)]
    out = {
        "seeds": [r["config"]["seed"] for r in runs],
        "metrics_mean": {k: round(statistics.fmean(r["metrics"][k] for r in runs), digits(k)) for k in keys},
        "runs": [{"seed": r["config"]["seed"], "best_epoch": r["best_epoch"],
                  "epochs_run": len(r["history"]), "metrics": {k: r["metrics"][k] for k in SHOWN if k in r["metrics"]}}
                 for r in runs],
        "files": files,
    }
    if len(runs) > 1:
        out["metrics_sd"] = {k: round(statistics.stdev(r["metrics"][k] for r in runs), digits(k) + 1) for k in keys}
    return out


def teacher_only(dataset, command, teacher, note):
    """A teacher scored before any student was trained from it (STUDENTS.json = "-")."""
    return {"command": command, "machine": teacher.get("machine"), "note": note,
            "teacher": {"bundles": teacher["bundles"], "models": len(teacher["bundles"]),
                        "metrics": teacher["metrics"]}}


def main():
    dataset, command, teacher_path, students_path, no_kd_spec, weights_file = sys.argv[1:7]
    teacher = load(teacher_path)
    if students_path == "-":
        save(dataset, teacher_only(dataset, command, teacher, no_kd_spec))
        print(f"{DISTILL_JSON}: ensemble_kd.{dataset}: teacher only {teacher['metrics']}")
        return
    students = load(students_path)
    metric = HEADLINE.get(dataset, "mrr@20")
    no_kd = {}
    for part in filter(None, no_kd_spec.split(";")):
        label, pattern = part.split("=", 1)
        files = sorted(glob.glob(os.path.expanduser(pattern)))
        if not files:
            sys.exit(f"ensemble_kd: {label}: no file matches {pattern}")
        no_kd[label] = seeded(files)
    config = students["config"]
    student = {
        "result_file": students_path,
        "d_model": config["model"]["d_model"], "n_layers": config["model"]["n_layers"],
        "window": config["model"]["max_len"], "distill": config["distill"],
        "max_epochs": config["max_epochs"], "schedule_epochs": config["schedule_epochs"],
        "browser_weight_bytes": os.path.getsize(weights_file),
        "seeds": students["seeds"], "metrics_mean": students["metrics_mean"],
        "metrics_sd": students["metrics_sd"],
        "runs": [{k: r[k] for k in ("seed", "best_epoch", "epochs_run", "train_seconds")}
                 | {"metrics": {k: r["metrics"][k] for k in SHOWN if k in r["metrics"]}}
                 for r in students["runs"]],
    }
    mean = student["metrics_mean"][metric]
    checks = {"metric": metric,
              "student_over_teacher": round(mean / teacher["metrics"][metric], 4),
              "student_over_no_kd": {label: round(mean / v["metrics_mean"][metric], 4) for label, v in no_kd.items()}}
    checks["keeps_95_percent_of_teacher"] = checks["student_over_teacher"] >= KEEP
    checks["gains_2_percent_over_no_kd"] = {label: r >= GAIN for label, r in checks["student_over_no_kd"].items()}
    section = {
        "command": command, "machine": students["machine"], "device": students["device"],
        "teacher": {"bundles": teacher["bundles"], "models": len(teacher["bundles"]),
                    "metrics": {k: teacher["metrics"][k] for k in teacher["metrics"]}},
        "student": student, "no_kd": no_kd, "checks": checks,
    }
    save(dataset, section)
    print(f"{DISTILL_JSON}: ensemble_kd.{dataset}: {metric} student {mean} ({checks['student_over_teacher']:.3f} of the "
          f"teacher's {teacher['metrics'][metric]}), over no-KD {checks['student_over_no_kd']}")


def save(dataset, section):
    doc = load(DISTILL_JSON) if os.path.exists(DISTILL_JSON) else {}
    doc.setdefault("ensemble_kd", {})[dataset] = section
    with open(DISTILL_JSON, "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    write_markdown(doc["ensemble_kd"])


def fmt(mean, sd, key):
    d = digits(key)
    return f"{mean:.{d}f} ± {sd:.{d + 1}f}" if sd is not None else f"{mean:.{d}f}"


def alpha_text(distill):
    """The KD weight: constant, or annealed linearly over the schedule (`--kd-alpha-end`)."""
    end = distill.get("alpha_end")
    if end is None:
        return f"alpha = {distill['alpha']}"
    return f"alpha {distill['alpha']} → {end} (linear over the schedule)"


def write_markdown(sections):
    lines = ["# Distillation from an ensemble of seeds (issue 20, item 4)", "",
             "Written by `scripts/distill-ensemble` (`results/distill.json` → `ensemble_kd`). The teacher is the",
             "ensemble of a configuration's seeds (the mean of their log-probabilities, `--teacher` given once",
             "per seed); the students have the same browser size and train with 3 seeds of their own, against",
             "the same student trained without a teacher. Every choice was made on validation (BENCHMARKS.md",
             "says which); the test set was read once per run.", ""]
    for dataset, s in sections.items():
        if "student" not in s:
            t = s["teacher"]
            lines += [f"## {dataset} (teacher only)", "", f"`{s['command']}`", "", s["note"], "",
                      "| model | " + " | ".join(SHOWN) + " |", "|---|" + "---:|" * len(SHOWN),
                      f"| ensemble of {t['models']} | " + " | ".join(fmt(t["metrics"][k], None, k) for k in SHOWN) + " |", ""]
            continue
        st, t, c = s["student"], s["teacher"], s["checks"]
        m = c["metric"]
        lines += [f"## {dataset}", "", f"`{s['command']}`", "",
                  f"Machine: {s['machine']}; device: {s['device']}. Students: d_model {st['d_model']} × "
                  f"{st['n_layers']} layers, window {st['window']}, {st['browser_weight_bytes']:,} bytes of browser weights; "
                  f"distillation T = {st['distill']['temperature']}, {alpha_text(st['distill'])}, "
                  f"at most {st['max_epochs']} epochs of a {st['schedule_epochs']}-epoch schedule.", "",
                  "| model | seeds | " + " | ".join(SHOWN) + " |", "|---|---|" + "---:|" * len(SHOWN)]
        lines.append(f"| teacher: ensemble of {t['models']} | — | " +
                     " | ".join(fmt(t["metrics"][k], None, k) for k in SHOWN) + " |")
        sd = st["metrics_sd"]
        lines.append(f"| **student, distilled** | {len(st['seeds'])} | " +
                     " | ".join(fmt(st["metrics_mean"][k], sd.get(k), k) for k in SHOWN) + " |")
        for label, v in s["no_kd"].items():
            vsd = v.get("metrics_sd", {})
            lines.append(f"| student without teacher ({label}) | {len(v['seeds'])} | " +
                         " | ".join(fmt(v["metrics_mean"][k], vsd.get(k), k) for k in SHOWN) + " |")
        keep = "met" if c["keeps_95_percent_of_teacher"] else "**not met**"
        lines += ["", f"- {m}: the distilled students keep {c['student_over_teacher']:.1%} of the teacher "
                  f"(target ≥ 95%: {keep})."]
        for label, r in c["student_over_no_kd"].items():
            met = "met" if c["gains_2_percent_over_no_kd"][label] else "**not met**"
            lines.append(f"- {m}: {r:.3f}× the student without teacher ({label}) (target ≥ 1.02: {met}).")
        per_seed = ", ".join(f"seed {r['seed']}: {r['metrics'][m]} (epoch {r['best_epoch']})" for r in st["runs"])
        lines += [f"- Per seed ({m}, best epoch by validation): {per_seed}.", ""]
    with open("docs/distill-ensemble.md", "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
