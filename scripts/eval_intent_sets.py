"""phone-intent on every independent evaluation set, through ``edgesplit eval``'s code path.

``edgesplit eval -w phone-intent`` measures the workload's registered set
(``tests/data/intent_eval.jsonl``); a plugin registers one held-out set, so this script runs the
same ``evaluate_workload`` (real router, real cloud on loopback, requests interleaved across
device, cascade and cloud) once per file and adds out-of-scope recall per route.

    python scripts/eval_intent_sets.py tests/data/intent_eval.jsonl tests/data/intent_eval2.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from edgesplit.device.workloads.builtin import intent_eval_items
from edgesplit.device.workloads.registry import EvalSet, plugin

from edgesplit.evaluation import evaluate_workload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path, help="JSONL: text, label per line")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    base = plugin("phone-intent")
    results = []
    for path in args.files:
        items = intent_eval_items(path)
        data = EvalSet(f"{path} (independent), {len(items)} requests", items)
        p = dataclasses.replace(base, eval_set=lambda _quick, d=data: d)
        r = evaluate_workload(p, None, log=print)
        n_oos = sum(it.truth == "out_of_scope" for it in items)
        r["out_of_scope_requests"] = n_oos
        for route, s in r["routes"].items():
            s["out_of_scope_recall"] = s["per_truth"].get("out_of_scope", float("nan"))
            print(
                f"{path.name} {route:8s} accuracy {100 * s['accuracy']:.1f} %  "
                f"OOS recall {100 * s['out_of_scope_recall']:.1f} % ({n_oos})  "
                f"escalated {100 * s['escalated']:.0f} %  median {s['median_ms']:.1f} ms  "
                f"p95 {s['p95_ms']:.1f} ms"
            )
        results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
