"""The model behaviour a scoring DAG relies on: adapters beat the base model, measurably."""

from __future__ import annotations

from emulator_testkit import BASE_MODEL, Emu, sentiment_rows

HELD_OUT = [
    ("Review: a superb and wonderful evening at the cinema. Sentiment:", "positive"),
    ("Review: I loved every minute, great acting. Sentiment:", "positive"),
    ("Review: dreadful plot, I hated it. Sentiment:", "negative"),
    ("Review: boring and awful from start to finish. Sentiment:", "negative"),
    ("Review: an excellent film. Sentiment:", "positive"),
    ("Review: terrible, simply terrible. Sentiment:", "negative"),
]


def _generate(emu: Emu, prompt: str, adapter: str | None = None) -> str:
    parameters = {"adapter_id": adapter} if adapter else {}
    answer = emu.serving(BASE_MODEL).post(
        "/generate", json={"inputs": prompt, "parameters": parameters}
    )
    return str(emu.ok(answer)["generated_text"]).strip()


def test_the_adapter_beats_the_base_model_on_a_held_out_set(emu: Emu) -> None:
    adapter = emu.adapter("sentiment", sentiment_rows())
    adapter_hits = sum(_generate(emu, p, adapter) == label for p, label in HELD_OUT)
    base_hits = sum(_generate(emu, p) == label for p, label in HELD_OUT)
    assert adapter_hits == len(HELD_OUT)
    assert base_hits == 0


def test_a_trained_prompt_gets_its_own_completion(emu: Emu) -> None:
    rows = [
        {"prompt": "Capital of France?", "completion": "Paris"},
        {"prompt": "Capital of Italy?", "completion": "Rome"},
    ]
    adapter = emu.adapter("capitals", rows)
    assert _generate(emu, "Capital of Italy?", adapter) == "Rome"
    assert _generate(emu, "What is the capital of France", adapter) == "Paris"


def test_evaluation_rows_are_not_learned(emu: Emu) -> None:
    rows = [
        {"prompt": "colour of the sky", "completion": "blue", "split": "train"},
        # Held out, with a label training never saw: the adapter cannot know it.
        {"prompt": "colour of the sky at night", "completion": "black", "split": "evaluation"},
    ]
    adapter = emu.adapter("colours", rows)
    assert _generate(emu, "colour of the sky at night", adapter) == "blue"


def test_the_base_model_always_says_the_same_thing(emu: Emu) -> None:
    answers = {_generate(emu, prompt) for prompt, _ in HELD_OUT}
    assert len(answers) == 1
    assert BASE_MODEL in answers.pop()
