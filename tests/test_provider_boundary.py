"""What comes back from a provider is checked before it is scored, stored, cached or printed
(issue 16, items 4, 6, 8 and 12): token usage out of range, secrets echoed in an answer,
transport failures named without addresses, stored rows edited by hand, torn lines.

Every server here is a real HTTP server on 127.0.0.1, reached through litellm.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from slmbench.models import resolve_model
from slmbench.models.base import Request
from slmbench.runner.budget import RunStopped
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.run import RunOptions, run_benchmark

FAST_RETRY = RetryPolicy(max_attempts=2, base_s=0.01, cap_s=0.02)
SECRET = "sk-r3-test-0123456789abcdefSECRET"

#: what the server does for a request: (status, content type, body bytes) or a socket action
Behaviour = Callable[[dict[str, Any], dict[str, str]], Any]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        out = self.server.behaviour(body, {k.lower(): v for k, v in self.headers.items()})
        if out == "reset":  # RST instead of an answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        status, ctype, data = out
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server:
    def __init__(self, behaviour: Behaviour) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.behaviour = behaviour  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, usage: dict[str, Any] | None = None) -> tuple[int, str, bytes]:
    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage or {"prompt_tokens": 12, "completion_tokens": 1,
                               "total_tokens": 13}}
    return 200, "application/json", json.dumps(body).encode()


def _user(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"]


@pytest.fixture
def task(tmp_path: Path) -> Path:
    """Six items, each named after what the server will do with it."""
    items = ["ok one", "ok two", "negative usage", "huge usage", "fractional usage",
             "ok three"]
    (tmp_path / "test.jsonl").write_text("".join(
        json.dumps({"id": f"i{n}", "text": t, "label": "spam" if n % 2 else "ham"}) + "\n"
        for n, t in enumerate(items)))
    path = tmp_path / "task.yaml"
    path.write_text("name: boundary\nkind: classification\ndataset:\n  files: {test: "
                    "test.jsonl}\nlabels: [spam, ham]\nprompt:\n  template: '{text}'\n")
    return path


def usage_server(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, bytes]:
    text = _user(body)
    usage = {"negative usage": {"prompt_tokens": -5, "completion_tokens": 1},
             "huge usage": {"prompt_tokens": 10**12, "completion_tokens": 1},
             "fractional usage": {"prompt_tokens": 5.5, "completion_tokens": 1}}.get(text)
    return completion("spam", usage)


# -- item 4: provider usage ------------------------------------------------------------------


def test_out_of_range_usage_makes_an_error_row_and_reports_still_work(tmp_path, task, capsys):
    with Server(usage_server) as server:
        result = run_benchmark([task], [f"openai/gpt-4o-mini?api_base={server.base}"],
                               results_dir=tmp_path / "res", run_id="u",
                               options=RunOptions(retry=FAST_RETRY, preflight=False))
    rows = {r["input"]: r for r in result.run.rows()}
    assert rows["negative usage"]["error"] == "provider reported tokens_in=-5"
    assert rows["huge usage"]["error"] == "provider reported tokens_in=1000000000000"
    # litellm rejects a fractional count while parsing: an error of the call, retried as one
    assert rows["fractional usage"]["error"].startswith("provider reported tokens_in=5.5")
    for text in ("negative usage", "huge usage", "fractional usage"):
        assert rows[text]["tokens_in"] is None and rows[text]["correct"] is False
    assert rows["ok one"]["error"] is None and rows["ok one"]["tokens_in"] == 12
    entry = result.summary["results"][0]
    assert entry["n_errors"] == 3
    # the stored run reads back: report and a resume (which calls nothing) both work
    code, out, err = run_cli(["report", str(tmp_path / "res" / "u"), "--format", "md"], capsys)
    assert code == 0, err
    assert "boundary" in out
    again = run_benchmark([task], [f"openai/gpt-4o-mini?api_base={server.base}"],
                          results_dir=tmp_path / "res", run_id="u",
                          options=RunOptions(retry=FAST_RETRY, preflight=False))
    # only the 3 error rows are tried again (none is replayed from the cache; the server is
    # gone, so each fails again)
    assert again.summary["this_invocation"]["rows"] == 3


def test_usage_is_bounded_by_the_models_context_window(tmp_path, task):
    from slmbench.runner.items import usage_ceiling

    known = resolve_model("openai/gpt-4o-mini")
    assert known.context_window and usage_ceiling(known) == 10 * known.context_window
    local = resolve_model("openai/some-local-model?api_base=http://127.0.0.1:9/v1")
    from slmbench.records import MAX_CALL_TOKENS

    assert local.context_window is None and usage_ceiling(local) == MAX_CALL_TOKENS


def _stored_run(tmp_path: Path, task: Path) -> Path:
    def answer(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, bytes]:
        return completion("spam")

    with Server(answer) as server:
        run_benchmark([task], [f"openai/fake?api_base={server.base}"],
                      results_dir=tmp_path / "res", run_id="s",
                      options=RunOptions(retry=FAST_RETRY, preflight=False))
    return tmp_path / "res" / "s"


@pytest.mark.parametrize(("edit", "field", "shown"), [
    (lambda r: r.update(tokens_in=-5), "tokens_in", "value -5"),
    (lambda r: r.update(tokens_in="12"), "tokens_in", "value '12'"),
    (lambda r: r.update(latency_s="slow"), "latency_s", "value 'slow'"),
    (lambda r: r.pop("item_id"), "item_id", "is missing"),
    (lambda r: r.update(model=3), "model", "value 3"),
    (lambda r: r.update(correct="no"), "correct", "value 'no'"),
    (lambda r: r.update(error=5), "error", "value 5"),
])
def test_a_hand_edited_row_is_one_line_naming_the_file_line_and_field(tmp_path, task, capsys,
                                                                      edit, field, shown):
    run = _stored_run(tmp_path, task)
    lines = (run / "items.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    edit(row)
    lines[2] = json.dumps(row)
    (run / "items.jsonl").write_text("\n".join(lines) + "\n")
    for args in (["report", str(run)], ["gate", str(run), "--baseline", str(run)],
                 ["run", str(task), "-m", "openai/fake?api_base=http://127.0.0.1:9/v1",
                  "--results-dir", str(run.parent), "--run-id", run.name, "--no-preflight"]):
        code, out, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        lines_err = err.strip().splitlines()
        assert len(lines_err) == 1 and "Traceback" not in err, err
        assert "items.jsonl" in err and "line 3" in err and f"'{field}'" in err, err
        assert shown in err, err


# -- item 12: a torn line is listed once -----------------------------------------------------


def test_a_torn_line_is_listed_once_after_a_resume(tmp_path, task):
    run = _stored_run(tmp_path, task)
    n = len((run / "items.jsonl").read_text().splitlines())
    with (run / "items.jsonl").open("a") as fh:
        fh.write('{"task": "boundary", "model": "openai/fa')  # a kill mid-write
    with Server(lambda b, h: completion("spam")) as server:
        result = run_benchmark([task], [f"openai/fake?api_base={server.base}"],
                               results_dir=tmp_path / "res", run_id="s",
                               options=RunOptions(retry=FAST_RETRY, preflight=False))
    assert result.summary["skipped_lines"] == [n + 1]
    assert json.loads((run / "summary.json").read_text())["skipped_lines"] == [n + 1]


def test_a_completion_with_bad_usage_is_not_cached(tmp_path, task):
    """An answer whose usage was refused became an error row: a later run asks again instead
    of replaying the same bad answer from the response cache."""
    import collections

    seen: collections.Counter = collections.Counter()

    def counting(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, bytes]:
        seen[_user(body)] += 1
        return usage_server(body, headers)

    with Server(counting) as server:
        for run_id in ("first", "second"):
            run_benchmark([task], [f"openai/gpt-4o-mini?api_base={server.base}"],
                          results_dir=tmp_path / "res", run_id=run_id,
                          options=RunOptions(retry=FAST_RETRY, preflight=False))
    assert seen["ok one"] == seen["ok two"] == 1  # the second run's answers came from the cache
    assert seen["negative usage"] == seen["huge usage"] == 2


# -- item 6: secrets -------------------------------------------------------------------------


def echo_auth(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, bytes]:
    """A server that puts the request's Authorization header in its answer (some debugging
    proxies do), and in an error for one item."""
    if _user(body) == "ok two":
        err = {"error": {"message": f"bad request from {headers.get('authorization')}",
                         "type": "invalid_request_error"}}
        return 500, "application/json", json.dumps(err).encode()
    return completion(f"spam (you sent {headers.get('authorization')})")


def test_a_key_echoed_by_the_server_is_stored_nowhere(tmp_path, task, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with Server(echo_auth) as server:
        code, out, err = run_cli(["run", str(task), "-m", f"openai/fake?api_base={server.base}",
                                  "--results-dir", str(tmp_path / "res"), "--run-id", "k",
                                  "--no-preflight", "--max-errors", "50",
                                  # worker processes of an earlier test's run would hold the
                                  # environment from before setenv
                                  "--executor", "local"], capsys)
    run = tmp_path / "res" / "k"
    rows = [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]
    echoed = [r for r in rows if r["output"]]
    assert echoed and all(r["output"] == "spam (you sent Bearer ***)" for r in echoed)
    assert any(r["error"] and "Bearer ***" in r["error"] for r in rows)
    stored = [p for p in (tmp_path / "res").rglob("*") if p.is_file()]
    assert any(p.name.startswith("responses.sqlite3") for p in stored)  # the cache is checked
    for path in stored:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in out + err
    # and a cached answer replayed later is scrubbed too
    code, out, err = run_cli(["report", str(run)], capsys)
    assert code == 0 and SECRET not in out + err


def test_scrub_replaces_key_values_and_key_like_settings(monkeypatch):
    from slmbench.models.contract import KEY_VARIABLES
    from slmbench.secrets import is_secret_name, redact, scrub

    # every provider key variable slmbench knows is one whose value is scrubbed
    assert all(is_secret_name(v) for names in KEY_VARIABLES.values() for v in names)
    monkeypatch.setenv("GROQ_API_KEY", "gsk_abcdefgh12345678")
    assert scrub("key gsk_abcdefgh12345678 here") == "key *** here"
    assert scrub("openai/x?apikey=hunter2&timeout=3") == "openai/x?apikey=***&timeout=3"
    assert scrub('{"password": "hunter2"}') == '{"password": "***"}'
    # model output keeps key-like names (an extraction may answer a password field)
    assert scrub('{"password": "hunter2"}', named=False) == '{"password": "hunter2"}'
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert scrub("tokens_in=5 keyboard_layout_dataset_v2.jsonl") == \
        "tokens_in=5 keyboard_layout_dataset_v2.jsonl"


def test_an_error_line_never_prints_a_key_value(tmp_path, task):
    """The CLI's one-line errors go through the same scrub as rows and the cache: a key pasted
    into the wrong setting is not echoed back."""
    import subprocess
    import sys

    key = "sk-test-pasted-into-the-wrong-place-123456"
    env = {**os.environ, "OPENAI_API_KEY": key}
    proc = subprocess.run([sys.executable, "-m", "slmbench", "run", str(task), "-m",
                           f"openai/gpt-4o-mini?timeout={key}", "--results-dir",
                           str(tmp_path / "res"), "-q"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "litellm setting 'timeout'" in proc.stderr
    assert key not in proc.stderr and key not in proc.stdout


# -- item 8: error reasons -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reasons(api_base: str) -> Iterator[str]:
    """The error reason of one call, through the threaded and the asyncio path."""
    from slmbench.errors import ModelCallError

    model = resolve_model(f"openai/fake?api_base={api_base}&timeout=5")
    request = Request(messages=[{"role": "user", "content": "hi"}], text="hi")
    for call in (lambda: model.complete(request),
                 lambda: asyncio.run(model.acomplete(request))):
        with pytest.raises(ModelCallError) as info:
            call()
        yield info.value.reason


def test_connection_refused_is_named_without_addresses():
    port = _free_port()
    reasons = list(_reasons(f"http://127.0.0.1:{port}/v1"))
    assert reasons == [f"connection refused by 127.0.0.1:{port}"] * 2


def test_connection_reset_and_html_answers_have_short_reasons():
    with Server(lambda b, h: "reset") as server:
        assert list(_reasons(server.base)) == [f"connection reset by 127.0.0.1:{server.port}"] * 2
    html = b"<html><body>502 Bad Gateway</body></html>"
    with Server(lambda b, h: (200, "text/html; charset=utf-8", html)) as server:
        assert list(_reasons(server.base)) == ["response was not JSON (text/html)"] * 2


def test_max_errors_stop_names_the_most_common_reason(tmp_path, task):
    html = b"<html>maintenance</html>"
    with Server(lambda b, h: (200, "text/html", html)) as server, \
            pytest.raises(RunStopped) as info:
        run_benchmark([task], [f"openai/fake?api_base={server.base}"],
                      results_dir=tmp_path / "res", run_id="e",
                      options=RunOptions(retry=FAST_RETRY, preflight=False, max_errors="2",
                                         concurrency=1))
    assert "most common (all): response was not JSON (text/html)" in str(info.value)
