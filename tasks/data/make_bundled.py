"""Re-create the small bundled datasets in this folder (deterministic; run from the repo root).

    python tasks/data/make_bundled.py --banking77 ../shared/datasets/banking77

* banking77_mini_{train,test}.jsonl and routing_{train,test}.jsonl are subsets of Banking77
  (Casanueva et al. 2020, CC BY 4.0, https://github.com/PolyAI-LDN/task-specific-datasets).
* orders_test.jsonl is synthetic, written by this script (CC0).
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent

CLASSIFICATION_LABELS = [
    "card_arrival", "lost_or_stolen_card", "pin_blocked", "exchange_rate", "top_up_failed",
    "transfer_timing", "request_refund", "age_limit", "atm_support", "terminate_account",
]
ROUTES = {
    "cards": ["card_arrival", "card_not_working", "lost_or_stolen_card", "pin_blocked",
              "activate_my_card"],
    "payments": ["transfer_timing", "cancel_transfer", "failed_transfer", "pending_transfer",
                 "transfer_not_received_by_recipient"],
    "top_up": ["top_up_failed", "pending_top_up", "top_up_limits", "automatic_top_up",
               "top_up_by_card_charge"],
    "human_agent": ["terminate_account", "compromised_card", "edit_personal_details",
                    "unable_to_verify_identity", "request_refund"],
}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _sample(rows: list[dict], key: str, labels: list[str], per_label: int, rng: random.Random,
            ) -> list[dict]:
    by_label = defaultdict(list)
    for row in rows:
        by_label[row[key]].append(row)
    out = []
    for label in labels:
        out.extend(rng.sample(by_label[label], per_label))
    rng.shuffle(out)
    return out


def banking(src: Path) -> None:
    rng = random.Random(77)
    train, test = _read(src / "train.jsonl"), _read(src / "test.jsonl")
    _write(HERE / "banking77_mini_train.jsonl",
           _sample(train, "label", CLASSIFICATION_LABELS, 40, rng))
    _write(HERE / "banking77_mini_test.jsonl",
           _sample(test, "label", CLASSIFICATION_LABELS, 5, rng))
    route_of = {intent: route for route, intents in ROUTES.items() for intent in intents}
    for split, rows, per_intent in (("train", train, 10), ("test", test, 2)):
        picked = _sample(rows, "label", list(route_of), per_intent, rng)
        _write(HERE / f"routing_{split}.jsonl",
               [{"id": r["id"], "text": r["text"], "route": route_of[r["label"]]}
                for r in picked])


PRODUCTS = ["blue kettle", "desk lamp", "steel water bottle", "wool scarf", "usb-c cable",
            "espresso grinder", "yoga mat", "phone case", "garden hose", "notebook"]
CITIES = ["Lisbon", "Leeds", "Porto", "Lyon", "Munich", "Ghent", "Turin", "Cork", "Gdansk",
          "Malmo"]
TEMPLATES = [
    "Please ship {q} x {p} to {c} for order {o}{d}.",
    "Order {o}: {q} units of the {p}, delivery to {c}{d}.",
    "Hi, I'd like {q} {p} sent to our {c} office. Reference {o}{d}.",
    "Can you send the {p} (qty {q}) to {c}? It's order {o}{d}.",
    "{o} - {p}, quantity {q}, ship to {c}{d}. Thanks!",
]


def orders() -> None:
    rng = random.Random(2026)
    rows = []
    for i in range(30):
        q = rng.randint(1, 12)
        p = rng.choice(PRODUCTS)
        c = rng.choice(CITIES)
        o = f"A-{rng.randint(1000, 9999)}"
        date = None
        d = ""
        if rng.random() < 0.5:
            date = f"2026-12-{rng.randint(1, 28):02d}"
            d = rng.choice([f" by {date}", f", needed on {date}", f" before {date}"])
        text = rng.choice(TEMPLATES).format(q=q, p=p, c=c, o=o, d=d)
        rows.append({"id": f"orders-{i:03d}", "text": text,
                     "fields": {"order_id": o, "product": p, "quantity": q, "city": c,
                                "delivery_date": date}})
    _write(HERE / "orders_test.jsonl", rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--banking77", type=Path, required=True)
    args = ap.parse_args()
    banking(args.banking77)
    orders()
