"""Re-create the synthetic assistant chain dataset in this folder (deterministic, CC0).

    python tasks/data/make_chain.py

Writes assistant_{train,test}.jsonl: short voice-assistant requests, each with an intent and
the slots of that intent, for the chain example task (tasks/examples/assistant_chain.yaml).
Every slot value appears verbatim in its text; no text occurs twice. Rows: {"id", "text",
"intent", "slots"}, the same shape as the SNIPS conversion in ../shared/datasets/snips.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

TIMES = ["6 am", "6:30 am", "7 am", "7:15 am", "8 am", "9:45 pm", "10 pm", "noon", "5 pm"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
        "tomorrow", "today"]
CITIES = ["lisbon", "leeds", "porto", "lyon", "munich", "ghent", "turin", "cork", "gdansk",
          "malmo", "oslo", "seville"]
ARTISTS = ["nina simone", "miles davis", "bjork", "fela kuti", "kate bush", "ravi shankar",
           "aretha franklin", "daft punk", "joni mitchell", "tom waits"]
GENRES = ["jazz", "blues", "techno", "folk", "reggae", "classical", "soul", "punk"]

# (intent, template, slots used); {day} templates are paired with day-less variants
TEMPLATES = {
    "set_alarm": [
        ("wake me up at {time}", ("time",)),
        ("set an alarm for {time} {day}", ("time", "day")),
        ("alarm at {time} please", ("time",)),
        ("i need an alarm {day} at {time}", ("day", "time")),
        ("can you set my alarm to {time}", ("time",)),
    ],
    "get_weather": [
        ("what is the weather in {city}", ("city",)),
        ("will it rain in {city} {day}", ("city", "day")),
        ("how cold is it in {city} right now", ("city",)),
        ("weather forecast for {city} on {day}", ("city", "day")),
        ("do i need an umbrella in {city} {day}", ("city", "day")),
    ],
    "play_music": [
        ("play some {genre}", ("genre",)),
        ("put on {artist}", ("artist",)),
        ("play {genre} by {artist}", ("genre", "artist")),
        ("i want to hear {artist}", ("artist",)),
        ("play my {genre} playlist", ("genre",)),
    ],
    "small_talk": [(text, ()) for text in (
        "how are you today", "tell me a joke", "thank you so much", "who made you",
        "good night", "you are funny", "what is your name", "do you like cats",
        "good morning", "are you a robot", "i am bored", "sing me a song", "that was great",
        "never mind", "what can you do", "you are very helpful", "hello there",
        "are you listening", "tell me something nice", "how old are you", "see you later",
        "i love you", "what do you dream about", "thanks for your help", "you made me laugh",
        "have a nice day", "what is the meaning of life", "do you have a family")],
}
POOLS = {"time": TIMES, "day": DAYS, "city": CITIES, "artist": ARTISTS, "genre": GENRES}


def _rows(rng: random.Random, prefix: str, per_intent: int, seen: set[str]) -> list[dict]:
    """``per_intent`` rows per intent, each text new (not in ``seen``, which grows)."""
    rows = []
    for intent, templates in TEMPLATES.items():
        while sum(r["intent"] == intent for r in rows) < per_intent:
            template, used = rng.choice(templates)
            values = {slot: rng.choice(POOLS[slot]) for slot in used}
            text = template.format(**values)
            if text in seen:
                continue
            seen.add(text)
            rows.append({"text": text, "intent": intent,
                         "slots": {slot: [value] for slot, value in values.items()}})
    rng.shuffle(rows)
    return [{"id": f"{prefix}-{i:03d}", **row} for i, row in enumerate(rows)]


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    rng = random.Random(4242)
    seen: set[str] = set()  # no text twice, within or across splits
    _write(HERE / "assistant_train.jsonl", _rows(rng, "assistant-train", 15, seen))
    _write(HERE / "assistant_test.jsonl", _rows(rng, "assistant-test", 6, seen))


if __name__ == "__main__":
    main()
