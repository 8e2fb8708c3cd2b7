"""Constrained decoding over labels where one label is a prefix of another (issue 16, item 11).

The reference is computed here independently: a second llama.cpp context over the bundled
SmolLM2 with logits for every position scores each full label, log p(label's tokens, then the
end-of-answer token | prompt), and ranks the labels by that sum. The trie's answer must be the
top of that ranking and its confidence exp(top score).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from slmbench.models import resolve_model
from slmbench.models.base import Request
from slmbench.models.llamacpp import embedded_model_path

# prefixes of one another, as ATIS's combined intents are (atis_flight#atis_airline)
LABELS = ("atis_flight", "atis_flight#atis_airline", "atis_flight#atis_airfare", "atis_airfare",
          "atis_airline", "flight", "flight_time", "flight_status")
TEXTS = [
    "show me flights from boston to denver tomorrow morning",
    "which airlines fly from dallas to pittsburgh",
    "how much is a ticket from atlanta to baltimore",
    "what time does the flight to miami leave",
    "list the flights and their airlines from denver to san francisco",
    "is flight 201 on time",
]


def _request(text: str, labels: tuple[str, ...] = LABELS) -> Request:
    instruction = ("Classify the air travel question into exactly one of these intents:\n"
                   + "\n".join(labels) + "\nAnswer with the intent name only.")
    return Request(messages=[{"role": "system", "content": instruction},
                             {"role": "user", "content": text}],
                   text=text, choices=labels, max_tokens=16)


@pytest.fixture(scope="module")
def model():
    m = resolve_model("llamacpp:smollm2?n_threads=1&search=exact")
    m.prepare(None)
    yield m
    m.close()


@pytest.fixture(scope="module")
def greedy():
    """The default search: one walk down the trie, labels ending on the way compete."""
    m = resolve_model("llamacpp:smollm2?n_threads=1")
    assert m.settings["search"] == "greedy"
    m.prepare(None)
    yield m
    m.close()


@pytest.fixture(scope="module")
def scorer(model):
    """Full-label log-likelihoods from an independent context (logits at every position)."""
    from llama_cpp import Llama

    from slmbench.models.llamacpp import model_params, use_extra_bufts

    with model_params(use_extra_bufts("auto")):
        llm = Llama(model_path=str(embedded_model_path("smollm2")), n_ctx=2048, n_threads=1,
                    n_threads_batch=1, logits_all=True, verbose=False, seed=0)

    seen: dict[str, dict[str, float]] = {}

    def score(request: Request) -> dict[str, float]:
        if request.text in seen:
            return seen[request.text]
        prompt = model._formatter(messages=request.messages).prompt
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        out = {}
        for label in request.choices:
            answer = llm.tokenize(label.encode(), add_bos=False, special=False) + \
                [llm.token_eos()]
            llm.reset()
            llm.eval(tokens + answer)
            total = 0.0
            for i, tok in enumerate(answer):
                row = np.asarray(llm.scores[len(tokens) - 1 + i], dtype=np.float64)
                top = row.max()
                total += row[tok] - (top + math.log(np.exp(row - top).sum()))
            out[label] = total
        seen[request.text] = out
        return out

    yield score
    llm.close()


def test_labels_are_prefixes_of_each_other(model):
    llm = model._llm
    short = llm.tokenize(b"atis_flight", add_bos=False, special=False)
    long = llm.tokenize(b"atis_flight#atis_airline", add_bos=False, special=False)
    assert long[:len(short)] == short  # the trie has a label ending inside another


@pytest.mark.parametrize("text", TEXTS)
def test_choice_and_confidence_equal_the_full_label_ranking(model, scorer, text):
    request = _request(text)
    comp = model.complete(request)
    scores = scorer(request)
    best = max(scores, key=scores.__getitem__)
    ranked = sorted(scores.values(), reverse=True)
    assert ranked[0] - ranked[1] > 1e-3, "a near tie: the test would hinge on float rounding"
    assert comp.text == best
    assert comp.confidence == pytest.approx(math.exp(scores[best]), rel=1e-3)
    assert comp.extra["answer_logprob"] == pytest.approx(scores[best], abs=1e-3)
    assert comp.confidence_source == "label-logprob"


def test_a_label_that_is_a_prefix_wins_when_ending_there_scores_higher(model, scorer):
    """The case the issue measured: the longer label's next token beats the end token, yet
    the whole longer label scores lower, so the short one must be chosen."""
    found = []
    for text in TEXTS:
        request = _request(text)
        scores = scorer(request)
        # where a greedy walk would leave the short label: after "atis_flight", p("#") vs end
        if max(scores, key=scores.__getitem__) in ("atis_flight", "flight"):
            found.append((text, model.complete(request).text,
                          max(scores, key=scores.__getitem__)))
    assert found, "no item of this toy set ranks a prefix label first"
    for _, answer, best in found:
        assert answer == best


def test_greedy_search_never_passes_over_a_prefix_label_that_scores_higher(greedy, scorer):
    """The default walk: where a label ends on the way and a longer one continues, the two
    compete by their full scores, and the confidence is exp(the chosen label's full score)."""
    prefix_wins = 0
    for text in TEXTS:
        request = _request(text)
        comp = greedy.complete(request)
        scores = scorer(request)
        assert comp.extra["answer_logprob"] == pytest.approx(scores[comp.text], abs=1e-3)
        assert comp.confidence == pytest.approx(math.exp(scores[comp.text]), rel=1e-3)
        # every label that is a prefix of the answer scored lower than the answer
        for label in request.choices:
            if comp.text != label and comp.text.startswith(label):
                assert scores[label] < scores[comp.text]
        prefix_wins += comp.text in ("atis_flight", "flight")
    assert prefix_wins >= 1  # the toy set has items where the short label must win


def test_greedy_search_decodes_fewer_answer_tokens_than_exact(greedy, model):
    walked = sum(greedy.complete(_request(t)).extra["answer_tokens_evaluated"] for t in TEXTS)
    searched = sum(model.complete(_request(t)).extra["answer_tokens_evaluated"] for t in TEXTS)
    assert walked < searched


def test_repeated_items_give_the_same_answer_and_confidence(model):
    """Branch switches rewind the KV cache: a later item must not see an earlier one."""
    first = [(c.text, c.confidence) for c in (model.complete(_request(t)) for t in TEXTS)]
    again = [(c.text, c.confidence) for c in (model.complete(_request(t)) for t in TEXTS)]
    for (a, ca), (b, cb) in zip(first, again, strict=True):
        assert a == b and ca == pytest.approx(cb, rel=1e-4)
