"""A one-seed distillation probe: `kd_probes.DATASET.NAME` in results/distill.json.

    python3 scripts/lib/kd_probe.py DATASET NAME COMMAND NOTE TEACHER.json LABEL=RESULT.json...

A probe is cheaper than scripts/distill-ensemble (one seed, no mean ± sd) and says so: it
answers "is this teacher worth three seeds?" before the hours are spent. TEACHER.json is the
teacher's `sessionrank eval` (or `train --results`) on the test set; each LABEL=RESULT.json a
student's `sessionrank train --results`, whose per-epoch validation is kept beside its test
figures, so that the comparison can be read at equal epochs. The first label without a
teacher is the baseline of the gain check. The checks are issue 20's: a student keeps >= 95%
of its teacher and gains >= 2% over the same student without it, on the dataset's headline
metric (Diginetica MRR@20, Beauty NDCG@10).
"""

import json
import os
import sys

# The same metrics, bars and file as the ensemble report (this directory is on sys.path when
# a script in it runs).
from ensemble_kd import DISTILL_JSON, GAIN, HEADLINE, KEEP, SHOWN, load


def student(label, path):
    r = load(path)
    c = r["config"]
    m = c["model"]
    return {
        "label": label,
        "file": os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path),
        "command": r.get("command"),
        "shape": f"d{m['d_model']} x {m['n_layers']}, window {m['max_len']}",
        "distill": c.get("distill"),
        "seed": c.get("seed"),
        "epochs": c.get("max_epochs"),
        "schedule_epochs": c.get("schedule_epochs"),
        "best_epoch": r.get("best_epoch"),
        "train_seconds": r.get("train_seconds"),
        "validation_mrr@20_by_epoch": [round(h["valid"]["mrr_at_20"], 2) for h in r["history"]],
        "validation_cases": r["history"][0]["valid"]["cases"] if r["history"] else 0,
        "metrics": {k: r["metrics"][k] for k in SHOWN},
        "machine": r.get("machine"),
    }


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    dataset, name, command, note, teacher_path = sys.argv[1:6]
    students = [student(*arg.split("=", 1)) for arg in sys.argv[6:]]
    teacher = load(teacher_path)
    head = HEADLINE.get(dataset, "mrr@20")
    t = teacher["metrics"][head]
    base = next((s for s in students if not s["distill"]), None)
    for s in students:
        v = s["metrics"][head]
        s["keeps_of_teacher"] = round(v / t, 4)
        if base and s is not base:
            s["gain_over_no_kd"] = round(v / base["metrics"][head] - 1, 4)
        s["meets"] = {
            "keep_95": v >= KEEP * t,
            "gain_2": bool(base) and s is not base and v >= GAIN * base["metrics"][head],
        }
    machine = [s.pop("machine") for s in students][0]  # one entry for the probe
    out = load(DISTILL_JSON)
    out.setdefault("kd_probes", {}).setdefault(dataset, {})[name] = {
        "command": command,
        "machine": machine,
        "note": note,
        "headline": head,
        "teacher": {"file": teacher_path, "metrics": {k: teacher["metrics"][k] for k in SHOWN}},
        "students": students,
    }
    with open(DISTILL_JSON, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    for s in students:
        print(f"{dataset}/{name} {s['label']}: {head} {s['metrics'][head]} "
              f"({s['keeps_of_teacher']:.1%} of the teacher's {t}"
              + (f", {s['gain_over_no_kd']:+.1%} over no-KD" if "gain_over_no_kd" in s else "")
              + f"), validation by epoch {s['validation_mrr@20_by_epoch']}")


if __name__ == "__main__":
    main()
