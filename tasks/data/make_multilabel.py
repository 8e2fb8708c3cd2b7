"""Re-create the synthetic support-ticket tagging dataset in this folder (deterministic, CC0).

    python tasks/data/make_multilabel.py

Writes tickets_{train,test}.jsonl for the multilabel example task
(tasks/multilabel/tickets.yaml): short support tickets, each about one to three of six
topics, with those topics as its tags. A ticket is an opener, one clause per tag and a closing;
each tag's clauses are split between the splits (the test split's clauses never occur in
training), so a classifier has to generalise from words, not recognise sentences. Rows:
{"id", "text", "labels"}; no text occurs twice.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
TAGS = ["billing", "refund", "login", "bug", "shipping", "feature_request"]

# per tag: clauses for the train split, then (after the None) clauses kept for the test split
CLAUSES: dict[str, list[str | None]] = {
    "billing": [
        "I was charged twice for my subscription this month",
        "my invoice shows a plan I never signed up for",
        "the monthly fee went up without any notice",
        "my card was billed even though I cancelled last week",
        "the VAT on my latest invoice looks wrong",
        "I need the invoices for the last quarter for my accountant",
        "there is a charge on my statement I do not recognise",
        "please change the billing address on my account",
        "I was billed for three seats but we only use two",
        "the payment for my annual plan failed but I was still charged",
        None,
        "the amount on my bill does not match the price on your website",
        "I keep getting charged after downgrading to the free plan",
        "can you explain the extra fee on this month's invoice",
        "my company card was debited twice for the same order",
        "I cannot find where to update the card you bill",
    ],
    "refund": [
        "I would like my money back",
        "please refund the duplicate payment",
        "I returned the item two weeks ago and still have no refund",
        "can I get a refund for the unused months",
        "I want to cancel and be reimbursed",
        "the refund you promised has not reached my account",
        "I am asking for a full refund of this order",
        "how long does a refund usually take",
        "please send the refund to my original payment method",
        "I was told I would be credited but nothing arrived",
        None,
        "I expect the overcharge to be paid back",
        "please reverse the charge and return my money",
        "when will I be reimbursed for the damaged parcel",
        "I demand a refund for a service I never used",
        "the credit note you sent does not cover the full amount",
    ],
    "login": [
        "I cannot log in to my account",
        "the password reset email never arrives",
        "my account got locked after a few wrong passwords",
        "two-factor codes from the app are always rejected",
        "I am signed out every few minutes",
        "the sign-in page says my email is not registered",
        "I lost my phone and cannot pass the verification step",
        "single sign-on with our company account stopped working",
        "it keeps asking me to verify my email in a loop",
        "I changed my email address and now I cannot get in",
        None,
        "logging in just spins forever",
        "my username and password are correct but access is denied",
        "the reset link says it has expired every time",
        "I am locked out of the admin account",
        "the login screen rejects my new password",
    ],
    "bug": [
        "the app crashes when I open the settings page",
        "the export button does nothing",
        "the dashboard shows an error 500",
        "the numbers in the report are clearly wrong",
        "pages load blank in Firefox",
        "the mobile app freezes when I upload a photo",
        "search returns results from other customers",
        "notifications are sent three times",
        "the date picker shows the wrong month",
        "saving a draft deletes my previous changes",
        None,
        "the checkout page throws an unexpected error",
        "the app closes by itself after the latest update",
        "the chart on the overview page never finishes loading",
        "attachments are corrupted after download",
        "clicking save shows a red error banner",
    ],
    "shipping": [
        "my parcel has not arrived after ten days",
        "the tracking number does not work",
        "the package was delivered to the wrong address",
        "the box arrived damaged",
        "the courier marked it delivered but I have nothing",
        "can you ship to Norway",
        "the delivery date keeps moving",
        "I was charged customs fees on delivery",
        "only half of my order was in the box",
        "I need to change the delivery address of an order",
        None,
        "the parcel is stuck at the depot",
        "my order still shows as not dispatched",
        "the shipment went back to your warehouse",
        "the delivery driver never came",
        "the courier lost my package",
    ],
    "feature_request": [
        "it would be great to have a dark mode",
        "please add an export to CSV",
        "could you support more than one currency",
        "I would love a calendar integration",
        "please let us set different roles for team members",
        "an API for the reports would help us a lot",
        "can you add keyboard shortcuts",
        "we need a way to schedule reports by email",
        "please add a bulk edit option",
        "I wish the app had an offline mode",
        None,
        "please consider adding a German translation",
        "a shared inbox for our team would be useful",
        "could the mobile app get widgets",
        "we would like to filter the dashboard by region",
        "an undo button would save us a lot of time",
    ],
}
OPENERS = ["", "Hi, ", "Hello, ", "Hi team, ", "Good morning, ", "Hey, "]
JOINERS = [". Also, ", ". On top of that, ", ", and ", ". Separately, ", ". Besides, "]
CLOSINGS = [".", ". Thanks.", ". Please help.", ". Thank you!", ". Regards.", "!"]
# tags per ticket: one, two or three
SIZES = [1, 1, 1, 2, 2, 2, 3]


def _pools(split: str) -> dict[str, list[str]]:
    out = {}
    for tag, clauses in CLAUSES.items():
        cut = clauses.index(None)
        out[tag] = [c for c in (clauses[:cut] if split == "train" else clauses[cut + 1:])
                    if c is not None]
    return out


def _tickets(split: str, n: int, rng: random.Random) -> list[dict]:
    pools = _pools(split)
    rows: list[dict] = []
    seen: set[str] = set()
    while len(rows) < n:
        tags = sorted(rng.sample(TAGS, rng.choice(SIZES)), key=TAGS.index)
        clauses = [rng.choice(pools[tag]) for tag in rng.sample(tags, len(tags))]
        body = clauses[0]
        for clause in clauses[1:]:
            body += rng.choice(JOINERS) + clause
        opener = rng.choice(OPENERS)
        text = opener + (body[0].lower() + body[1:] if opener and body[:2] != "I " else body)
        text += rng.choice(CLOSINGS)
        text = text[0].upper() + text[1:]
        if text in seen:
            continue
        seen.add(text)
        rows.append({"id": f"tickets-{split}-{len(rows):03d}", "text": text, "labels": tags})
    return rows


def main() -> None:
    rng = random.Random(14)
    for split, n in (("train", 120), ("test", 40)):
        rows = _tickets(split, n, rng)
        path = HERE / f"tickets_{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                        encoding="utf-8")
        print(f"{path.name}: {len(rows)} tickets")


if __name__ == "__main__":
    main()
