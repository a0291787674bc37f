"""Regenerate dags_examples/data/support_tickets.jsonl, the sample the example DAGs use.

A small support-ticket routing task in prompt/completion form: four categories, tickets
written from category-specific phrases plus shared filler. Deterministic (seeded), so the
committed file only changes when this script does.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CATEGORIES: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for my subscription",
        "my invoice shows the wrong amount",
        "please refund the duplicate payment",
        "the credit card charge is higher than the plan price",
        "I need a receipt for last month's bill",
        "why did my monthly fee go up",
        "cancel the automatic renewal charge",
        "the discount code was not applied to my invoice",
    ],
    "shipping": [
        "my package has not arrived yet",
        "the tracking number does not work",
        "the parcel was delivered to the wrong address",
        "how long does international delivery take",
        "the courier left the box damaged at my door",
        "can I change the delivery date of my order",
        "my order is stuck in transit for a week",
        "the shipment is missing one item",
    ],
    "technical": [
        "the app crashes when I open settings",
        "I get an error 500 when uploading a file",
        "the page keeps loading forever on my phone",
        "sync between my laptop and tablet is broken",
        "the export button does nothing in the browser",
        "notifications stopped working after the update",
        "the API returns a timeout for every request",
        "the dashboard charts show no data since yesterday",
    ],
    "account": [
        "I forgot my password and cannot log in",
        "please change the email address on my profile",
        "how do I delete my account permanently",
        "two factor authentication codes are not accepted",
        "my username was locked after too many attempts",
        "add a second user to our team workspace",
        "I want to merge my two accounts",
        "update the company name shown on my profile",
    ],
}
OPENERS = ["Hello,", "Hi team,", "Good morning,", "Hey,", "Dear support,", ""]
CLOSERS = ["Thanks.", "Please help.", "Regards.", "This is urgent.", "Thank you!", ""]
PROMPT = "Route this support ticket to a category (billing, shipping, technical, account).\n"


def make_rows(seed: int = 7, per_category: int = 75) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for category, phrases in CATEGORIES.items():
        for i in range(per_category):
            body = " ".join(
                part
                for part in (rng.choice(OPENERS), rng.choice(phrases), rng.choice(CLOSERS))
                if part
            )
            rows.append(
                {
                    "prompt": f"{PROMPT}Ticket: {body}\nCategory:",
                    "completion": category,
                    "split": "evaluation" if i % 5 == 0 else "train",
                }
            )
    rng.shuffle(rows)
    return rows


def main() -> None:
    out = (
        Path(__file__).resolve().parent.parent / "dags_examples" / "data" / "support_tickets.jsonl"
    )
    with out.open("w") as fh:
        for row in make_rows():
            fh.write(json.dumps(row) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
