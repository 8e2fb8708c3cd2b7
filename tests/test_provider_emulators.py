"""litellm's real provider transformations against the provider-contract emulators.

Each test sends ``litellm.completion(..., api_base=srv.url)`` to an emulator on 127.0.0.1 and
checks what litellm put on the wire, how the emulator answered, and what litellm made of the
answer (content, finish_reason, usage, cost).  The model-name constants below are re-exported
from ``provider_emulators`` for other test files.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# litellm fetches Anthropic beta-header config from GitHub unless told to use its bundled copy
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

import litellm  # noqa: E402
import pytest  # noqa: E402
from fakeserver import count_completion_tokens, count_prompt_tokens  # noqa: E402
from provider_emulators import (  # noqa: E402
    ANTHROPIC_MODEL,
    GEMINI_MODEL,
    OPENAI_NONE_EFFORT_MODEL,
    OPENAI_REASONING_MODEL,
    AnthropicEmulator,
    GeminiEmulator,
    OpenAIReasoningEmulator,
    anthropic_schema_error,
    default_responder,
    fit_to_schema,
    openai_strict_schema_error,
)

__all__ = [
    "ANTHROPIC_MODEL",
    "GEMINI_MODEL",
    "OPENAI_NONE_EFFORT_MODEL",
    "OPENAI_REASONING_MODEL",
]

KEY = "sk-test"
SYSTEM = "Classify the message as greeting or farewell."
PROMPT = "so long and thanks for all the fish"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
PT = count_prompt_tokens(MESSAGES)  # (7 + 3) + (8 + 3) = 21, the same for every provider
LABEL_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["greeting", "farewell"]}},
    "required": ["label"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "label", "strict": True, "schema": LABEL_SCHEMA},
}


def say(text: str):
    return lambda prompt, body: text


def _post(url: str, body: object, headers: dict[str, str]) -> tuple[int, dict]:
    """POST JSON straight to an emulator (no proxy), returning (status, parsed body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _cost(entry: str, *, fresh_in: int, out: int, cache_read: int = 0, cache_write: int = 0,
          reasoning: int = 0) -> float:
    """Dollar cost by hand from litellm's bundled price map."""
    p = litellm.model_cost[entry]
    cost = fresh_in * p["input_cost_per_token"] + out * p["output_cost_per_token"]
    cost += cache_read * p.get("cache_read_input_token_cost", 0)
    cost += cache_write * p.get("cache_creation_input_token_cost", 0)
    cost += reasoning * p.get("output_cost_per_reasoning_token", p["output_cost_per_token"])
    return cost


def test_model_constants_are_reasoning_models_in_litellms_bundled_map():
    for name, entry in [(OPENAI_REASONING_MODEL, "gpt-5-mini"),
                        (OPENAI_NONE_EFFORT_MODEL, "gpt-5.1"),
                        (ANTHROPIC_MODEL, "claude-haiku-4-5"),
                        (GEMINI_MODEL, "gemini/gemini-2.5-flash")]:
        info = litellm.model_cost[entry]
        assert info["supports_reasoning"] is True, name
        assert info["litellm_provider"] == name.split("/")[0]
    assert litellm.model_cost["gpt-5-mini"]["supports_none_reasoning_effort"] is False
    assert litellm.model_cost["gpt-5.1"]["default_reasoning_effort"] == "none"
    assert litellm.model_cost["claude-haiku-4-5"]["supports_native_structured_output"] is True


# =========================================================================== OpenAI


def test_openai_request_shape_usage_and_cost():
    with OpenAIReasoningEmulator(say("farewell"), reasoning_tokens=25, cached_tokens=4,
                                 api_key=KEY) as srv:
        r = litellm.completion(model=OPENAI_REASONING_MODEL, api_base=srv.url, api_key=KEY,
                               messages=MESSAGES, max_tokens=200, reasoning_effort="low")
    [req] = srv.requests
    assert srv.url.startswith("http://127.0.0.1:") and srv.url.endswith("/v1")
    assert req["path"] == "/v1/chat/completions" and req["status"] == 200
    assert req["headers"]["authorization"] == "***"
    # litellm maps max_tokens -> max_completion_tokens for the gpt-5 family, passes the effort
    assert req["body"] == {"model": "gpt-5-mini", "messages": MESSAGES,
                           "max_completion_tokens": 200, "reasoning_effort": "low"}
    assert req["prompt"] == PROMPT
    assert r.choices[0].message.content == "farewell"
    assert r.choices[0].finish_reason == "stop"
    u = r.usage
    assert u.prompt_tokens == PT == 21
    assert u.prompt_tokens_details.cached_tokens == 4  # included in prompt_tokens
    assert u.completion_tokens_details.reasoning_tokens == 25
    assert u.completion_tokens == 25 + 1  # reasoning included in completion_tokens
    assert u.total_tokens == PT + 26
    expected = _cost("gpt-5-mini", fresh_in=PT - 4, cache_read=4, out=26)
    assert litellm.completion_cost(r) == pytest.approx(expected, rel=1e-12)


def test_openai_temperature_zero_on_a_reasoning_model():
    with OpenAIReasoningEmulator(api_key=KEY) as srv:
        common = {"model": OPENAI_REASONING_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES}
        # litellm refuses client-side: nothing is sent
        with pytest.raises(litellm.UnsupportedParamsError, match="temperature=0"):
            litellm.completion(**common, temperature=0)
        assert srv.requests == []
        # allowed_openai_params does not get past the gpt-5 gate either
        with pytest.raises(litellm.UnsupportedParamsError):
            litellm.completion(**common, temperature=0, allowed_openai_params=["temperature"])
        assert srv.requests == []
        # drop_params: temperature silently removed, the call succeeds
        r = litellm.completion(**common, temperature=0, drop_params=True)
        assert "temperature" not in srv.last["body"] and r.choices[0].finish_reason == "stop"
        # temperature=1 (the only supported value) is forwarded and accepted
        litellm.completion(**common, temperature=1)
        assert srv.last["body"]["temperature"] == 1 and srv.last["status"] == 200
        # smuggled past litellm: the emulator answers OpenAI's real 400
        with pytest.raises(litellm.BadRequestError, match="does not support 0 with this model"):
            litellm.completion(**common, extra_body={"temperature": 0})
    assert srv.last["status"] == 400
    assert srv.last["response"] == {"error": {
        "message": "Unsupported value: 'temperature' does not support 0 with this model. Only "
                   "the default (1) value is supported.",
        "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}


def test_openai_contract_rejections_direct():
    with OpenAIReasoningEmulator(api_key=KEY) as srv:
        url = srv.url + "/chat/completions"
        auth = {"Authorization": f"Bearer {KEY}"}
        base = {"model": "gpt-5-mini", "messages": MESSAGES}

        def err(body, headers=auth):
            status, payload = _post(url, body, headers)
            return status, payload["error"]

        status, e = err({**base, "max_tokens": 10})
        assert (status, e["param"], e["code"]) == (400, "max_tokens", "unsupported_parameter")
        assert "Use 'max_completion_tokens' instead" in e["message"]
        for k, v in [("top_p", 0.5), ("logprobs", True), ("stop", ["x"])]:
            status, e = err({**base, k: v})
            assert (status, e["param"], e["code"]) == (400, k, "unsupported_parameter")
            assert e["message"] == f"Unsupported parameter: '{k}' is not supported with this model."
        status, e = err({**base, "reasoning_effort": "none"})
        assert (status, e["param"], e["code"]) == (400, "reasoning_effort", "unsupported_value")
        status, e = err({**base, "model": "gpt-9-imaginary"})
        assert (status, e["code"], e["type"]) == (404, "model_not_found", "invalid_request_error")
        status, e = err({**base, "frobnicate": 1})
        assert (status, e["message"]) == (400, "Unrecognized request argument supplied: frobnicate")
        status, e = err(base, headers={})
        assert status == 401 and e["message"].startswith("You didn't provide an API key")
        status, e = err(base, headers={"Authorization": "Bearer sk-wrong-key-1234"})
        assert (status, e["code"]) == (401, "invalid_api_key")
        assert "sk-wrong" not in e["message"]  # the key is masked as the real API does
        status, e = err(b"{not json")
        assert status == 400 and e["type"] == "invalid_request_error"
        # effort "none" (gpt-5.1): temperature and logprobs are accepted
        status, ok = _post(url, {**base, "model": "gpt-5.1", "temperature": 0,
                                 "logprobs": True}, auth)
        assert status == 200 and ok["choices"][0]["logprobs"]["content"]
    assert all(r["headers"].get("authorization") in (None, "***") for r in srv.requests)


def test_openai_reasoning_budget_and_length():
    with OpenAIReasoningEmulator(say("one two three four five"), reasoning_tokens=30) as srv:
        common = {"model": OPENAI_REASONING_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES}
        # the hidden reasoning eats the whole budget: empty content, "length"
        r = litellm.completion(**common, max_tokens=20)
        assert r.choices[0].message.content == ""
        assert r.choices[0].finish_reason == "length"
        assert r.usage.completion_tokens == 20
        assert r.usage.completion_tokens_details.reasoning_tokens == 20
        # the answer does not fit behind the reasoning: cut to what is left
        r = litellm.completion(**common, max_tokens=32)
        assert r.choices[0].message.content == "one two"
        assert r.choices[0].finish_reason == "length"
        assert r.usage.completion_tokens == 32
        assert r.usage.completion_tokens_details.reasoning_tokens == 30
        # enough room: everything
        r = litellm.completion(**common, max_tokens=35, reasoning_effort="minimal")
        assert r.choices[0].message.content == "one two three four five"
        assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens == 35
        assert [q["body"]["max_completion_tokens"] for q in srv.requests] == [20, 32, 35]


def test_openai_structured_output_enum_and_strict_schema():
    with OpenAIReasoningEmulator(say("I would say it is a Farewell.")) as srv:
        common = {"model": OPENAI_REASONING_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES}
        r = litellm.completion(**common, response_format=RESPONSE_FORMAT)
        assert srv.last["body"]["response_format"] == RESPONSE_FORMAT  # native, unchanged
        assert json.loads(r.choices[0].message.content) == {"label": "farewell"}
        assert srv.last["constrained"] is True
        assert srv.last["answer"] == "I would say it is a Farewell."
        # a schema that strict mode refuses: OpenAI's 400 surfaces as BadRequestError
        loose = {"type": "object", "properties": {"label": {"type": "string"}},
                 "required": ["label"]}
        bad = {"type": "json_schema",
               "json_schema": {"name": "label", "strict": True, "schema": loose}}
        with pytest.raises(litellm.BadRequestError, match="additionalProperties"):
            litellm.completion(**common, response_format=bad)
        err = srv.last["response"]["error"]
        assert srv.last["status"] == 400 and err["param"] == "response_format"
        assert err["message"] == (
            "Invalid schema for response_format 'label': In context=(), 'additionalProperties' "
            "is required to be supplied and to be false.")


def test_openai_none_effort_logprobs_and_temperature():
    with OpenAIReasoningEmulator(say("hello there"), logprob=-0.25) as srv:
        common = {"model": OPENAI_NONE_EFFORT_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES}
        r = litellm.completion(**common, temperature=0, logprobs=True, top_logprobs=2)
        body = srv.last["body"]
        assert body["temperature"] == 0 and body["logprobs"] is True
        assert body["top_logprobs"] == 2 and "reasoning_effort" not in body
        content = r.choices[0].logprobs.content
        assert [t.token for t in content] == ["hello", "there"]
        assert all(t.logprob == -0.25 and len(t.top_logprobs) == 2 for t in content)
        assert r.usage.completion_tokens_details.reasoning_tokens == 0
        assert r.usage.completion_tokens == 2
        # with reasoning on, litellm refuses logprobs client-side
        n = len(srv.requests)
        with pytest.raises(litellm.UnsupportedParamsError, match="logprobs"):
            litellm.completion(**common, logprobs=True, reasoning_effort="low")
        assert len(srv.requests) == n


# =========================================================================== Anthropic


def test_anthropic_request_shape_cache_usage_and_cost():
    with AnthropicEmulator(say("farewell"), cached_tokens=10, cache_write_tokens=5,
                           api_key=KEY) as srv:
        r = litellm.completion(model=ANTHROPIC_MODEL, api_base=srv.url, api_key=KEY,
                               messages=MESSAGES, max_tokens=64)
    [req] = srv.requests
    assert srv.url.startswith("http://127.0.0.1:")
    assert req["path"] == "/v1/messages" and req["status"] == 200
    assert req["headers"]["x-api-key"] == "***"
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    assert req["body"] == {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        "max_tokens": 64,
        "system": [{"type": "text", "text": SYSTEM}],
    }
    usage = req["response"]["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"],
            usage["cache_creation_input_tokens"]) == (PT - 10 - 5, 10, 5)
    assert r.choices[0].message.content == "farewell"
    assert r.choices[0].finish_reason == "stop"  # end_turn
    u = r.usage
    assert u.prompt_tokens == PT  # litellm adds cache reads + writes back in
    assert u.cache_read_input_tokens == 10 and u.cache_creation_input_tokens == 5
    assert u.prompt_tokens_details.cached_tokens == 10
    assert u.prompt_tokens_details.cache_creation_tokens == 5
    assert u.completion_tokens == 1 and u.completion_tokens_details.reasoning_tokens == 0
    expected = _cost("claude-haiku-4-5", fresh_in=PT - 15, cache_read=10, cache_write=5,
                     out=1)
    assert litellm.completion_cost(r) == pytest.approx(expected, rel=1e-12)


def test_anthropic_extended_thinking_is_billed_as_output():
    with AnthropicEmulator(say("farewell my friend"), reasoning_tokens=300) as srv:
        r = litellm.completion(model=ANTHROPIC_MODEL, api_base=srv.url, api_key=KEY,
                               messages=MESSAGES, max_tokens=2000, reasoning_effort="low")
    body = srv.last["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 2000 and "temperature" not in body
    blocks = srv.last["response"]["content"]
    assert [b["type"] for b in blocks] == ["thinking", "text"]
    assert blocks[0]["signature"]
    assert r.choices[0].message.content == "farewell my friend"
    assert r.choices[0].message.reasoning_content == blocks[0]["thinking"]
    assert r.choices[0].message.thinking_blocks[0]["signature"] == blocks[0]["signature"]
    assert r.usage.completion_tokens == 300 + 3  # thinking is inside output_tokens
    assert r.usage.completion_tokens_details.reasoning_tokens == 300
    assert r.usage.completion_tokens_details.text_tokens == 3
    expected = _cost("claude-haiku-4-5", fresh_in=PT, out=303)
    assert litellm.completion_cost(r) == pytest.approx(expected, rel=1e-12)


def test_anthropic_thinking_contract_errors_pass_through_litellm():
    with AnthropicEmulator() as srv:
        common = {"model": ANTHROPIC_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES}
        # litellm forwards temperature=0 next to thinking; the API refuses it
        with pytest.raises(litellm.BadRequestError, match="may only be set to 1 when thinking"):
            litellm.completion(**common, max_tokens=2000, reasoning_effort="low", temperature=0)
        assert srv.last["body"]["temperature"] == 0
        # a budget below 1024 is forwarded as given
        with pytest.raises(litellm.BadRequestError, match="greater than or equal to 1024"):
            litellm.completion(**common, max_tokens=2000,
                               thinking={"type": "enabled", "budget_tokens": 500})
        # reasoning_effort="low" maps to budget 1024 without checking max_tokens
        with pytest.raises(litellm.BadRequestError, match="must be greater than"):
            litellm.completion(**common, max_tokens=1000, reasoning_effort="low")
        assert srv.last["body"]["thinking"]["budget_tokens"] == 1024
    assert [q["status"] for q in srv.requests] == [400, 400, 400]
    assert srv.last["response"]["type"] == "error"
    assert srv.last["response"]["error"]["type"] == "invalid_request_error"


def test_anthropic_has_no_logprobs():
    with AnthropicEmulator() as srv:
        common = {"model": ANTHROPIC_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES, "max_tokens": 16}
        with pytest.raises(litellm.UnsupportedParamsError, match="logprobs"):
            litellm.completion(**common, logprobs=True)
        assert srv.requests == []
        r = litellm.completion(**common, logprobs=True, drop_params=True)
        assert "logprobs" not in srv.last["body"]
        assert getattr(r.choices[0], "logprobs", None) is None
        status, payload = _post(srv.url + "/v1/messages",
                                {**srv.last["body"], "logprobs": True},
                                {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert status == 400
    assert payload["error"] == {"type": "invalid_request_error",
                                "message": "logprobs: Extra inputs are not permitted"}


def test_anthropic_max_tokens_stop_reason_maps_to_length():
    with AnthropicEmulator(say("one two three four five")) as srv:
        r = litellm.completion(model=ANTHROPIC_MODEL, api_base=srv.url, api_key=KEY,
                               messages=MESSAGES, max_tokens=2)
    assert srv.last["response"]["stop_reason"] == "max_tokens"
    assert r.choices[0].message.content == "one two"
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 2


def test_anthropic_structured_output_native_and_tool_forms():
    with AnthropicEmulator(say("That's a farewell, I think")) as srv:
        common = {"model": ANTHROPIC_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES, "max_tokens": 64}
        # a closed schema: native structured outputs (beta output_format + beta header)
        r = litellm.completion(**common, response_format=RESPONSE_FORMAT)
        req = srv.last
        assert req["body"]["output_format"] == {"type": "json_schema", "schema": LABEL_SCHEMA}
        assert "structured-outputs" in req["headers"]["anthropic-beta"]
        assert "tools" not in req["body"]
        assert json.loads(r.choices[0].message.content) == {"label": "farewell"}
        assert req["constrained"] is True
        # an open object (additionalProperties: true): litellm forces its json_tool_call tool
        open_schema = {**LABEL_SCHEMA, "additionalProperties": True}
        r = litellm.completion(**common, response_format={
            "type": "json_schema", "json_schema": {"name": "label", "schema": open_schema}})
        req = srv.last
        assert "output_format" not in req["body"]
        assert req["body"]["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
        assert req["body"]["tools"][0]["input_schema"] == open_schema
        assert req["response"]["stop_reason"] == "tool_use"
        assert req["response"]["content"][0]["input"] == {"label": "farewell"}
        assert json.loads(r.choices[0].message.content) == {"label": "farewell"}
        assert not r.choices[0].message.tool_calls
        assert r.choices[0].finish_reason == "stop"


def test_anthropic_auth_and_headers():
    with AnthropicEmulator(api_key=KEY) as srv:
        url = srv.url + "/v1/messages"
        body = {"model": "claude-haiku-4-5", "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}]}
        status, payload = _post(url, body, {"anthropic-version": "2023-06-01"})
        assert status == 401 and payload["type"] == "error"
        assert payload["error"] == {"type": "authentication_error",
                                    "message": "x-api-key header is required"}
        status, payload = _post(url, body, {"x-api-key": KEY})
        assert status == 400 and payload["error"]["type"] == "invalid_request_error"
        assert payload["error"]["message"] == "anthropic-version: header is required"
        status, payload = _post(url, {**body, "model": "claude-imaginary"},
                                {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
        assert status == 404 and payload["error"]["type"] == "not_found_error"
        with pytest.raises(litellm.AuthenticationError):
            litellm.completion(model=ANTHROPIC_MODEL, api_base=srv.url, api_key="sk-wrong",
                               messages=MESSAGES, max_tokens=8)
    assert srv.last["headers"]["x-api-key"] == "***"


# =========================================================================== Gemini


def test_gemini_request_shape_thoughts_usage_and_cost():
    with GeminiEmulator(say("farewell"), reasoning_tokens=50, cached_tokens=6,
                        api_key=KEY) as srv:
        r = litellm.completion(model=GEMINI_MODEL, api_base=srv.url, api_key=KEY,
                               messages=MESSAGES, max_tokens=500, reasoning_effort="low")
    [req] = srv.requests
    assert srv.url.startswith("http://127.0.0.1:") and srv.url.endswith("/v1beta")
    assert req["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert req["headers"]["x-goog-api-key"] == "***" and req["query"] == {}
    assert req["body"] == {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "system_instruction": {"parts": [{"text": SYSTEM}]},
        "generationConfig": {"max_output_tokens": 500,
                             "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}},
    }
    meta = req["response"]["usageMetadata"]
    assert (meta["promptTokenCount"], meta["candidatesTokenCount"], meta["thoughtsTokenCount"],
            meta["cachedContentTokenCount"], meta["totalTokenCount"]) == (PT, 1, 50, 6, PT + 51)
    assert r.choices[0].message.content == "farewell"
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.reasoning_content  # includeThoughts summary part
    u = r.usage
    assert u.prompt_tokens == PT  # promptTokenCount, cache reads included
    assert u.prompt_tokens_details.cached_tokens == 6
    assert u.completion_tokens == 1 + 50  # candidates + thoughts
    assert u.completion_tokens_details.reasoning_tokens == 50
    assert u.total_tokens == PT + 51
    expected = _cost("gemini/gemini-2.5-flash", fresh_in=PT - 6, cache_read=6, out=1,
                     reasoning=50)
    assert litellm.completion_cost(r) == pytest.approx(expected, rel=1e-12)


def test_gemini_thoughts_count_against_max_output_tokens():
    with GeminiEmulator(say("one two three four five"), reasoning_tokens=40) as srv:
        common = {"model": GEMINI_MODEL, "api_base": srv.url, "api_key": KEY,
                  "messages": MESSAGES}
        r = litellm.completion(**common, max_tokens=30)  # no thinkingConfig: dynamic thinking
        assert "thinkingConfig" not in srv.last["body"].get("generationConfig", {})
        cand = srv.last["response"]["candidates"][0]
        assert cand == {"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}
        assert not r.choices[0].message.content
        assert r.choices[0].finish_reason == "length"
        assert r.usage.completion_tokens == 30
        assert r.usage.completion_tokens_details.reasoning_tokens == 30
        r = litellm.completion(**common, max_tokens=43)
        assert r.choices[0].message.content == "one two three"
        assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 43
        # thinking off: no thoughts at all
        r = litellm.completion(**common, max_tokens=43, reasoning_effort="none")
        assert srv.last["body"]["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 0
        assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens == 5
        assert "thoughtsTokenCount" not in srv.last["response"]["usageMetadata"]


def test_gemini_structured_output_enum():
    with GeminiEmulator(say("definitely a FAREWELL")) as srv:
        r = litellm.completion(model=GEMINI_MODEL, api_base=srv.url, api_key=KEY,
                               messages=MESSAGES, response_format=RESPONSE_FORMAT)
    gen = srv.last["body"]["generationConfig"]
    assert gen["response_mime_type"] == "application/json"
    assert gen["response_json_schema"] == LABEL_SCHEMA  # 'strict' stripped, schema kept
    assert json.loads(r.choices[0].message.content) == {"label": "farewell"}
    assert srv.last["constrained"] is True


def test_gemini_contract_rejections_direct():
    with GeminiEmulator(api_key=KEY) as srv:
        def call(model, body, headers=None, query=""):
            url = f"{srv.url}/models/{model}:generateContent{query}"
            return _post(url, body, headers if headers is not None else {"x-goog-api-key": KEY})

        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        status, e = call("gemini-2.5-flash", body, headers={})
        assert (status, e["error"]["status"], e["error"]["code"]) == (403, "PERMISSION_DENIED",
                                                                      403)
        status, e = call("gemini-2.5-flash", body, headers={"x-goog-api-key": "nope"})
        assert (status, e["error"]["status"]) == (400, "INVALID_ARGUMENT")
        assert e["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        status, ok = call("gemini-2.5-flash", body, headers={}, query=f"?key={KEY}")
        assert status == 200 and srv.last["query"] == {"key": "***"}
        status, e = call("gemini-0-imaginary", body)
        assert (status, e["error"]["status"]) == (404, "NOT_FOUND")
        pro_off = {**body, "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
        status, e = call("gemini-2.5-pro", pro_off)
        assert status == 400 and "only works in thinking mode" in e["error"]["message"]
        level = {**body, "generationConfig": {"thinkingConfig": {"thinkingLevel": "low"}}}
        assert call("gemini-2.5-flash", level)[0] == 400
        assert call("gemini-3-flash-preview", level)[0] == 200
        status, e = call("gemini-2.5-flash", {**body, "generationConfig": {"bogus": 1}})
        assert status == 400 and 'Unknown name "bogus"' in e["error"]["message"]
        with pytest.raises(litellm.BadRequestError, match="only works in thinking mode"):
            litellm.completion(model="gemini/gemini-2.5-pro", api_base=srv.url, api_key=KEY,
                               messages=MESSAGES, reasoning_effort="none")


# =========================================================================== helpers


def test_schema_helpers():
    assert default_responder("  Hello, world", {}) == "Hello"
    assert default_responder("...", {}) == "ok"
    schema = {"type": "object", "additionalProperties": False,
              "required": ["label", "score", "tags", "ok", "note"],
              "properties": {"label": {"type": "string", "enum": ["spam", "ham"]},
                             "score": {"type": "integer"},
                             "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
                             "ok": {"type": "boolean"},
                             "note": {"anyOf": [{"type": "null"}, {"type": "string"}]}},
              "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}}}
    assert openai_strict_schema_error(schema) is None
    assert fit_to_schema(schema, "HAM 7") == {"label": "ham", "score": 7, "tags": ["a"],
                                              "ok": False, "note": "HAM 7"}
    assert fit_to_schema(schema, {"label": "spam", "score": 2, "tags": ["b", "a"], "ok": True,
                                  "note": None}) == {
        "label": "spam", "score": 2, "tags": ["b", "a"], "ok": True, "note": None}
    missing = {**schema, "required": ["label"]}
    assert "Missing 'score'" in openai_strict_schema_error(missing)
    nested = {**schema, "properties": {"x": {"type": "object", "properties": {}}},
              "required": ["x"]}
    assert openai_strict_schema_error(nested) == (
        "In context=('properties', 'x'), 'additionalProperties' is required to be supplied and "
        "to be false.")
    assert "'allOf' is not permitted" in openai_strict_schema_error({**schema, "allOf": []})
    assert "type: \"array\"" in openai_strict_schema_error({"type": "array"})
    assert anthropic_schema_error(schema) is None
    assert "uniqueItems" in anthropic_schema_error({"type": "array", "uniqueItems": True})
    assert count_completion_tokens('{"label": "farewell"}') == 2
