"""Tests for tests/fakeserver.py, using real clients (litellm, openai, http.client) on loopback."""

from __future__ import annotations

import collections
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from fakeserver import (
    DEFAULT_FAULT_KINDS,
    FAULT_KINDS,
    FakeOpenAIServer,
    FaultPlan,
    count_completion_tokens,
    count_prompt_tokens,
)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is two plus two?"},
]


def _answer(body: dict) -> str:
    return f"the answer to '{body['messages'][-1]['content']}' is four"


@pytest.fixture(scope="module")
def litellm():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm as _litellm

    _litellm.telemetry = False
    return _litellm


@pytest.fixture
def server():
    with FakeOpenAIServer(_answer) as s:
        yield s


def _post(
    server: FakeOpenAIServer,
    body: dict | None = None,
    *,
    conn: http.client.HTTPConnection | None = None,
    timeout: float = 5.0,
    path: str = "/v1/chat/completions",
) -> tuple[int, dict[str, str], bytes]:
    """One raw POST; returns (status, headers, body bytes)."""
    if body is None:
        body = {"model": "fake", "messages": MESSAGES}
    c = conn or http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        if conn is None:
            c.close()


def _ask(prompt: str) -> dict:
    return {"model": "fake", "messages": [{"role": "user", "content": prompt}]}


# --------------------------------------------------------------------------- real clients


def test_litellm_completion_answer_and_usage(server, litellm):
    resp = litellm.completion(
        model="openai/fake",
        api_base=server.base_url,
        api_key="sk-test",
        messages=MESSAGES,
        num_retries=0,
    )
    expected = _answer({"messages": MESSAGES})
    assert resp.choices[0].message.content == expected
    assert resp.choices[0].finish_reason == "stop"
    pt = sum(len(m["content"].split()) + 3 for m in MESSAGES)  # the documented rule
    assert pt == count_prompt_tokens(MESSAGES) == (3 + 3) + (5 + 3)
    ct = len(expected.split())
    assert ct == count_completion_tokens(expected)
    assert resp.usage.prompt_tokens == pt
    assert resp.usage.completion_tokens == ct
    assert resp.usage.total_tokens == pt + ct
    assert len(server.calls) == 1
    call = server.calls[0]
    assert call["model"] == "fake"
    assert call["messages"] == MESSAGES
    assert call["_fault"] is None
    assert isinstance(call["_t"], float)
    assert server.prompt_counts() == collections.Counter({"What is two plus two?": 1})


def test_litellm_logprobs_controlled_by_callback(litellm):
    lp = {"value": -2.5}
    with FakeOpenAIServer(lambda b: "B because reasons", answer_logprob=lambda b: lp["value"]) as s:
        resp = litellm.completion(
            model="openai/fake",
            api_base=s.base_url,
            api_key="sk-test",
            messages=MESSAGES,
            logprobs=True,
            top_logprobs=1,
            num_retries=0,
        )
        content = resp.choices[0].logprobs.content
        assert [t.token for t in content] == ["B", "because", "reasons"]
        assert all(t.logprob == -2.5 for t in content)
        assert content[0].bytes == list(b"B")
        assert content[0].top_logprobs[0].token == "B"
        # not requested => no logprobs
        resp = litellm.completion(
            model="openai/fake",
            api_base=s.base_url,
            api_key="sk-test",
            messages=MESSAGES,
            num_retries=0,
        )
        assert getattr(resp.choices[0], "logprobs", None) is None
        assert s.calls[0]["logprobs"] is True
        assert "logprobs" not in s.calls[1]


def test_logprobs_raw_shape_and_disabled():
    body = {**_ask("x"), "logprobs": True}
    with FakeOpenAIServer(lambda b: "yes no", answer_logprob=lambda b: [-0.1, -3.0]) as s:
        status, _, raw = _post(s, body)
        lp = json.loads(raw)["choices"][0]["logprobs"]["content"]
        assert lp == [
            {"token": "yes", "logprob": -0.1, "bytes": list(b"yes"), "top_logprobs": []},
            {"token": "no", "logprob": -3.0, "bytes": list(b"no"), "top_logprobs": []},
        ]
    with FakeOpenAIServer(lambda b: "yes", logprobs=False, usage=False) as s:
        status, _, raw = _post(s, body)
        data = json.loads(raw)
        assert status == 200
        assert data["choices"][0]["logprobs"] is None
        assert "usage" not in data


def test_openai_client_retries_first_attempt_429():
    import openai

    plan = FaultPlan.first_attempts(n=1, kinds=["429"], share=1.0, retry_after_s=0.05)
    with FakeOpenAIServer(lambda b: "ok!", faults=plan) as s:
        client = openai.OpenAI(base_url=s.base_url, api_key="sk-test", max_retries=1)
        resp = client.chat.completions.create(model="fake", messages=MESSAGES)
        assert resp.choices[0].message.content == "ok!"
        assert [c["_fault"] for c in s.calls] == ["429", None]
        assert s.fault_counts == collections.Counter({"429": 1})


# --------------------------------------------------------------------------- protocol basics


def test_response_shape_models_alias_keepalive(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    status, headers, raw = _post(server, {**_ask("hi"), "model": "my-model"}, conn=conn)
    data = json.loads(raw)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(raw)
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert isinstance(data["created"], int)
    assert data["model"] == "my-model"
    assert data["choices"][0]["message"]["role"] == "assistant"
    sock = conn.sock
    # /chat/completions without /v1 on the same keep-alive connection
    status, _, raw = _post(server, _ask("hi"), conn=conn, path="/chat/completions")
    assert status == 200
    assert conn.sock is sock  # connection reused
    conn.request("GET", "/v1/models")
    r = conn.getresponse()
    models = json.loads(r.read())
    assert r.status == 200
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "fake"
    conn.close()
    assert server.prompt_counts()["hi"] == 2


def test_stream_rejected_with_400(server):
    status, _, raw = _post(server, {**_ask("hi"), "stream": True})
    assert status == 400
    assert json.loads(raw)["error"]["code"] == "stream_not_supported"


def test_bad_json_and_unknown_route(server):
    req = urllib.request.Request(
        server.base_url + "/chat/completions", data=b"{nope", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 400
    ei.value.close()
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(server.base_url + "/nothing", timeout=5)
    assert ei.value.code == 404
    ei.value.close()


def test_delay_and_concurrency():
    with FakeOpenAIServer(delay_s=0.1) as s:
        results: list[int] = []

        def one(i: int) -> None:
            results.append(_post(s, _ask(f"q{i}"))[0])

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
    assert results == [200] * 16
    assert 0.1 <= elapsed < 1.0  # served in parallel, not 16 x 0.1 s
    assert len(s.prompt_counts()) == 16
    assert max(s.prompt_counts().values()) == 1


# --------------------------------------------------------------------------- fault kinds


def test_fault_kinds_are_known():
    assert set(DEFAULT_FAULT_KINDS) == set(FAULT_KINDS) - {"timeout"}
    with pytest.raises(ValueError):
        FaultPlan(0.1, kinds=["418"])
    with pytest.raises(ValueError):
        FaultPlan(1.5)


def test_fault_429_with_and_without_retry_after():
    with FakeOpenAIServer(faults=FaultPlan.always("429", retry_after_s=0.05)) as s:
        status, headers, raw = _post(s)
        assert status == 429
        assert headers["retry-after"] == "0.05"
        assert json.loads(raw)["error"]["type"] == "rate_limit_exceeded"
    with FakeOpenAIServer(faults=FaultPlan.always("429", retry_after_s=1)) as s:
        assert _post(s)[1]["retry-after"] == "1"
    with FakeOpenAIServer(faults=FaultPlan.always("429-no-retry-after")) as s:
        status, headers, _ = _post(s)
        assert status == 429
        assert "retry-after" not in headers
        assert s.fault_counts == collections.Counter({"429-no-retry-after": 1})


@pytest.mark.parametrize("kind", ["500", "503"])
def test_fault_5xx(kind):
    with FakeOpenAIServer(faults=FaultPlan.always(kind)) as s:
        status, _, raw = _post(s)
        assert status == int(kind)
        assert "error" in json.loads(raw)
        assert s.calls[0]["_fault"] == kind


def test_fault_timeout_exceeds_client_timeout():
    with FakeOpenAIServer(faults=FaultPlan.always("timeout", timeout_s=3.0)) as s:
        t0 = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout)):
            _post(s, timeout=0.2)
        assert time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 1.0  # stop() does not wait for the stalled handler


def test_fault_timeout_then_close_without_response():
    plan = FaultPlan.always("timeout", timeout_s=0.2)
    with FakeOpenAIServer(faults=plan) as s, pytest.raises(http.client.RemoteDisconnected):
        _post(s, timeout=5)


def test_fault_drop_gives_connection_error():
    with FakeOpenAIServer(faults=FaultPlan.always("drop")) as s:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _post(s)
        req = urllib.request.Request(
            s.base_url + "/chat/completions", data=json.dumps(_ask("x")).encode()
        )
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(req, timeout=5)
        assert s.fault_counts["drop"] == 2


def test_fault_empty_body():
    with FakeOpenAIServer(faults=FaultPlan.always("empty")) as s:
        status, headers, raw = _post(s)
        assert status == 200
        assert headers["content-length"] == "0"
        assert raw == b""


def test_fault_truncated_is_invalid_json():
    with FakeOpenAIServer(faults=FaultPlan.always("truncated")) as s:
        status, headers, raw = _post(s)
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert raw.startswith(b'{"id"')
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)


def test_fault_garbage_is_valid_but_wrong():
    with FakeOpenAIServer(_answer, faults=FaultPlan.always("garbage")) as s:
        status, _, raw = _post(s)
    data = json.loads(raw)
    assert status == 200
    content = data["choices"][0]["message"]["content"]
    assert isinstance(content, str)
    assert content and content != _answer({"messages": MESSAGES})
    assert data["usage"]["completion_tokens"] == len(content.split())


def test_fault_wrong_type_alternates():
    with FakeOpenAIServer(faults=FaultPlan.always("wrong-type")) as s:
        first = json.loads(_post(s)[2])
        second = json.loads(_post(s)[2])
    assert isinstance(first["choices"], list)
    assert first["choices"][0]["message"]["content"] == 42
    assert isinstance(second["choices"], dict)


def test_always_with_predicate():
    plan = FaultPlan.always("503", lambda prompt: "boom" in prompt)
    with FakeOpenAIServer(faults=plan) as s:
        assert _post(s, _ask("kaboom!"))[0] == 503
        assert _post(s, _ask("fine"))[0] == 200
        assert _post(s, _ask("boom again"))[0] == 503
        assert s.fault_counts == collections.Counter({"503": 2})


# --------------------------------------------------------------------------- plans


def test_first_attempts_fail_then_succeed():
    prompts = [f"question {i}" for i in range(200)]
    plan = FaultPlan.first_attempts(n=1, kinds=["500", "503"], share=0.05, seed=0)
    targeted = [p for p in prompts if plan.is_targeted(p)]
    assert 2 <= len(targeted) <= 25
    with FakeOpenAIServer(faults=plan) as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
        first = {p: _post(s, _ask(p), conn=conn)[0] for p in prompts}
        second = {p: _post(s, _ask(p), conn=conn)[0] for p in targeted}
        conn.close()
    assert {p for p, st in first.items() if st != 200} == set(targeted)
    assert all(first[p] in (500, 503) for p in targeted)
    assert all(st == 200 for st in second.values())
    assert sum(s.fault_counts.values()) == len(targeted)
    counts = s.prompt_counts()
    assert all(counts[p] == (2 if p in targeted else 1) for p in prompts)


def test_first_attempts_n2_same_subset_for_same_seed():
    a = FaultPlan.first_attempts(n=2, kinds=["429"], share=0.3, seed=7, retry_after_s=0.05)
    b = FaultPlan.first_attempts(n=2, kinds=["429"], share=0.3, seed=7)
    prompts = [f"p{i}" for i in range(100)]
    assert [a.is_targeted(p) for p in prompts] == [b.is_targeted(p) for p in prompts]
    p = next(p for p in prompts if a.is_targeted(p))
    with FakeOpenAIServer(faults=a) as s:
        assert [_post(s, _ask(p))[0] for _ in range(3)] == [429, 429, 200]


def _classify(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return "invalid-json"
    choices = data.get("choices")
    if not isinstance(choices, list):
        return "no-choices-list" if "error" not in data else "error"
    content = choices[0]["message"]["content"]
    if not isinstance(content, str):
        return "bad-content"
    return "ok" if content == "ok" else "other-text"


def _statuses(seed: int, n: int = 400) -> tuple[list[object], list[str | None]]:
    plan = FaultPlan(rate=0.05, kinds=DEFAULT_FAULT_KINDS, seed=seed, retry_after_s=0.05)
    observed: list[object] = []
    with FakeOpenAIServer(faults=plan) as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
        for i in range(n):
            try:
                status, _, raw = _post(s, _ask(f"item {i}"), conn=conn)
                observed.append((status, _classify(raw)))
            except (http.client.HTTPException, ConnectionError):
                conn.close()  # reopened by the next request
                observed.append("conn-error")
        conn.close()
        faults = [c["_fault"] for c in s.calls]
    return observed, faults


def test_fault_rate_band_and_determinism():
    obs_a, faults_a = _statuses(seed=0)
    obs_b, faults_b = _statuses(seed=0)
    _, faults_c = _statuses(seed=1)
    assert len(faults_a) == 400
    n_faults = sum(f is not None for f in faults_a)
    assert 8 <= n_faults <= 35  # Binomial(400, 0.05): mean 20, sd ~4.4
    assert faults_a == faults_b
    assert obs_a == obs_b
    assert faults_a != faults_c
    # the client saw exactly the injected faults, and nothing else
    for fault, obs in zip(faults_a, obs_a, strict=True):
        if fault is None:
            assert obs == (200, "ok")
        elif fault in ("drop", "timeout"):
            assert obs == "conn-error"
        else:
            assert obs != (200, "ok"), fault


def test_fault_rate_over_many_decisions():
    plan = FaultPlan(rate=0.05, seed=3)
    decisions = [plan.decide({}) for _ in range(20000)]
    rate = sum(d is not None for d in decisions) / len(decisions)
    assert 0.045 <= rate <= 0.055
    kinds = collections.Counter(d for d in decisions if d is not None)
    assert set(kinds) == set(DEFAULT_FAULT_KINDS)
