"""Contenders on Banking77 and SNIPS: purpose-built classifiers against a prompted small LLM.

    python benchmarks/contenders.py [--data-dir ../shared/datasets] [--results-dir results]
                                    [--llm-sample-banking77 300] [--llm-sample-snips 0]
                                    [--table RUN ...]

Not a speed benchmark: it answers issue 17's question on real data. For each dataset it
writes a task file (the full test split scored, the full train split for training and
retrieval) and makes two runs with ``slmbench run``:

* ``baselines-<dataset>``: ``baseline:tfidf-logreg`` and ``baseline:embed-logreg`` (SmolLM2
  mean-pooled embeddings), each plain and ``?calibrate=temperature`` (TF-IDF also
  ``isotonic``), on every test item;
* ``smollm2-<dataset>``: the embedded SmolLM2-135M with constrained decoding, zero-shot and
  with retrieved examples: k = 4 and k = 8 nearest by TF-IDF, k = 8 nearest by the embeddings
  (``by=embed``), and k = 8 drawn at random. ``--llm-sample-*`` scores a seeded stratified
  sample of the test items (0: all of them), because a few-shot item takes the 135M model
  most of a second on 2 cores.

Then it prints one table (accuracy, macro-F1, $/1k items, ECE, mean input tokens, the
retrieval's setup seconds) and writes the leaderboard with its Pareto plot
(``contenders.md``, ``contenders.png`` in the results folder). ``--table RUN...`` only prints
the table of runs already made. Local models are priced per hour of the default CPU machine on
busy time, so the $ figures move with machine load. A stopped run resumes: run it again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import add_repo_to_path, machine

DATASETS = {
    # name: (label column, instruction's noun)
    "banking77": ("label", "customer message"),
    "snips": ("intent", "voice-assistant request"),
}
BASELINES = ("baseline:tfidf-logreg", "baseline:tfidf-logreg?calibrate=temperature",
             "baseline:tfidf-logreg?calibrate=isotonic", "baseline:embed-logreg",
             "baseline:embed-logreg?calibrate=temperature")
LLMS = ("llamacpp:smollm2", "llamacpp:smollm2?k=4", "llamacpp:smollm2?k=8",
        "llamacpp:smollm2?k=8&by=embed", "llamacpp:smollm2?k=8&select=random")


def task_file(folder: Path, data_dir: Path, name: str) -> Path:
    label, noun = DATASETS[name]
    spec = {
        "name": name, "kind": "classification",
        "dataset": {"files": {"test": str(data_dir / name / "test.jsonl"),
                              "train": str(data_dir / name / "train.jsonl")},
                    "split": "test", "train_split": "train",
                    "columns": {"id": "id", "text": "text", "label": label}},
        "labels": "from_train",
        "few_shot": {"from": "train", "k": 0},
        "prompt": {"instruction": f"Classify the {noun} into exactly one of these intents:\n"
                                  "{labels}\nAnswer with the intent name only.",
                   "template": "Message: {text}"},
    }
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def run(task: Path, models: tuple[str, ...], results: Path, run_id: str,
        sample: int) -> Path:
    cmd = [sys.executable, "-m", "slmbench", "run", str(task), "--results-dir", str(results),
           "--run-id", run_id]
    for model in models:
        cmd += ["-m", model]
    if sample:
        cmd += ["--sample", str(sample)]
    print("#", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return results / run_id


def table(runs: list[Path]) -> list[str]:
    lines = ["| task | model | n | accuracy | macro-F1 | $/1k items | ECE | mean tokens in | "
             "retrieval setup s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for folder in runs:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        tokens: dict[tuple[str, str], list[int]] = {}
        with (folder / "items.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if row.get("tokens_in") is not None:
                    tokens.setdefault((row["task"], row["model"]), []).append(row["tokens_in"])
        timings = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["timings"]
        retrieval: dict[tuple[str, str], float] = {}
        for t in timings:
            key = (t["task"], t["model"])
            retrieval[key] = retrieval.get(key, 0.0) + (t.get("retrieval_s") or 0.0)
        for e in summary["results"]:
            key = (e["task"], e["model"])
            usd, ece = e.get("usd_per_1k_items"), e.get("ece")
            usd_s = f"${usd:.3g}" if usd is not None else "unpriced"
            ece_s = f"{ece:.3f}" if ece is not None else "–"
            lines.append(
                f"| {e['task']} | {e['model']} | {e['n']} | {e['accuracy'] * 100:.1f}% | "
                f"{e['macro_f1']:.3f} | {usd_s} | {ece_s} | "
                f"{f'{statistics.mean(tokens[key]):.0f}' if tokens.get(key) else '–'} | "
                f"{retrieval.get(key, 0.0):.1f} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("/work/shared/datasets"))
    ap.add_argument("--results-dir", type=Path, default=Path("results"))
    ap.add_argument("--llm-sample-banking77", type=int, default=300)
    ap.add_argument("--llm-sample-snips", type=int, default=0)
    ap.add_argument("--table", type=Path, nargs="+", help="only print the table of these runs")
    args = ap.parse_args()
    add_repo_to_path()
    runs = args.table
    if not runs:
        print(f"# {machine()}")
        args.results_dir.mkdir(parents=True, exist_ok=True)
        runs = []
        for name in DATASETS:
            task = task_file(args.results_dir, args.data_dir, name)
            sample = getattr(args, f"llm_sample_{name}")
            runs.append(run(task, BASELINES, args.results_dir, f"baselines-{name}", 0))
            runs.append(run(task, LLMS, args.results_dir, f"smollm2-{name}", sample))
    print("\n".join(table(runs)))
    out = (args.results_dir if not args.table else args.table[0].parent) / "contenders.md"
    subprocess.run([sys.executable, "-m", "slmbench", "report", *map(str, runs),
                    "--format", "md", "--out", str(out), "--plot",
                    out.with_suffix(".png").name], check=True)  # relative to the markdown
    print(f"# leaderboard and Pareto plot: {out}, {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
