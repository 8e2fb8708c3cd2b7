"""Every option, model setting, prompt and run id is checked before the first model call
(issue 16, items 3, 5, 7, 10 and 12): one line naming what is wrong, exit 2, and a server that
received no request."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli, write_jsonl, write_task
from fakeserver import FakeOpenAIServer

ROUTING = REPO / "tasks" / "support_routing.yaml"
FIXTURE_RUN = REPO / "tests" / "fixtures" / "run-aae7708"


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(lambda body: "billing") as srv:
        yield srv


def _run_args(tmp_path: Path, model: str, *extra: str) -> list[str]:
    return ["run", str(ROUTING), "-m", model, "--limit", "2", "--no-cache", "-q",
            "--no-preflight", "--results-dir", str(tmp_path / "results"), *extra]


# -- item 3: numeric options ---------------------------------------------------------------
@pytest.mark.parametrize(("option", "value"), [
    ("--volume", "-5"), ("--volume", "inf"), ("--hourly", "nan"), ("--hourly", "-1"),
    ("--volume", "nan")])
def test_bad_number_option_of_run_is_refused_before_any_call(tmp_path, capsys, server, option,
                                                              value):
    calls = len(server.calls)
    code, _, err = run_cli(_run_args(tmp_path, f"openai/fake?api_base={server.base_url}",
                                     option, value), capsys)
    line = one_line(err)
    assert code == 2
    assert f"'{option}'" in line and "finite number of at least 0" in line
    assert len(server.calls) == calls  # no request reached the server
    assert not (tmp_path / "results").exists()  # no run folder either


@pytest.mark.parametrize("args", [
    ["reprice", str(FIXTURE_RUN), "--volume", "-1"],
    ["reprice", str(FIXTURE_RUN), "--hourly", "inf"],
    ["report", str(FIXTURE_RUN), "--volume", "nan"],
    ["estimate", str(ROUTING), "-m", "baseline:tfidf-logreg", "--hourly", "-2"],
])
def test_bad_number_option_of_other_commands_is_one_line(capsys, args):
    code, _, err = run_cli(args, capsys)
    line = one_line(err)
    assert code == 2 and f"'{args[-2]}'" in line and "finite number" in line


# -- item 3: model settings ------------------------------------------------------------------
@pytest.mark.parametrize(("setting", "must"), [
    ("timeout=abc", "finite number above 0"),
    ("timeout=-1", "finite number above 0"),
    ("timeout=0", "finite number above 0"),
    ("temperature=hot", "from 0 to 2"),
    ("temperature=7", "from 0 to 2"),
    ("temperature=nan", "from 0 to 2"),
    ("seed=x", "whole number"),
    ("seed=1.5", "whole number"),
    ("max_tokens=0", "whole number of at least 1"),
    ("max_tokens=abc", "whole number of at least 1"),
    ("logprobs=maybe", "true or false"),
    ("api_base=not-a-url", "http:// or https:// URL"),
    ("api_base=ftp://127.0.0.1/v1", "http:// or https:// URL"),
    ("api_base=http://", "http:// or https:// URL"),
])
def test_bad_litellm_setting_is_refused_before_any_call(tmp_path, capsys, server, setting,
                                                        must):
    key = setting.split("=")[0]
    model = (f"openai/fake?{setting}" if key == "api_base"
             else f"openai/fake?api_base={server.base_url}&{setting}")
    calls = len(server.calls)
    code, _, err = run_cli(_run_args(tmp_path, model), capsys)
    line = one_line(err)
    assert code == 2
    assert f"litellm setting '{key}' must be" in line and must in line
    assert f"?{setting}" in line  # the value as given
    assert len(server.calls) == calls
    assert not (tmp_path / "results").exists()


def test_unknown_setting_does_not_echo_its_value(capsys, tmp_path):
    code, _, err = run_cli(_run_args(tmp_path, "openai/fake?apikey=sk-secret-123"), capsys)
    line = one_line(err)
    assert code == 2 and "unknown litellm setting 'apikey'" in line
    assert "sk-secret-123" not in line


@pytest.mark.parametrize(("setting", "must"), [
    ("n_ctx=abc", "whole number from 0"),
    ("n_ctx=-3", "whole number from 0"),
    ("n_gpu_layers=x", "whole number from -1"),
    ("n_threads=0", "whole number from 1"),
    ("n_batch=1.5", "whole number from 1"),
    ("instances=0", "whole number from 1"),
    ("seed=abc", "whole number from -1"),
    ("prefix_cache=yes", "true or false"),
    ("decoding=greedy", "one of constrained, free"),
    ("extra_bufts=1", "one of auto, true, false"),
])
def test_bad_llamacpp_setting_names_the_setting(tmp_path, capsys, setting, must):
    key = setting.split("=")[0]
    code, _, err = run_cli(_run_args(tmp_path, f"llamacpp:smollm2?{setting}"), capsys)
    line = one_line(err)
    assert code == 2
    assert f"llamacpp setting '{key}' must be" in line and must in line
    assert f"llamacpp:smollm2?{setting}" in line


@pytest.mark.parametrize("model_id", [
    "openai/fake?temperature=0.7&timeout=0.5&seed=3&max_tokens=8&logprobs=true"
    "&api_base=http://127.0.0.1:8080/v1",
    "openai/fake?temperature=2&api_base=https://example.invalid/v1",
    "openai/fake?temperature=0",
])
def test_good_litellm_settings_are_kept_as_given(model_id):
    from slmbench.models.registry import parse_model_id, resolve_model

    model = resolve_model(model_id)
    _, _, given = parse_model_id(model_id)
    assert {k: model.settings[k] for k in given} == given  # checked, never converted


def test_good_llamacpp_settings_pass_the_table():
    from slmbench.models.llamacpp import SETTINGS
    from slmbench.models.settings import check_settings

    check_settings("llamacpp", "llamacpp:x", SETTINGS, {
        "n_ctx": 0, "n_gpu_layers": -1, "n_threads": 2, "n_batch": 64, "seed": -1,
        "decoding": "free", "prefix_cache": False, "instances": 2, "extra_bufts": True})


# -- item 12: empty model names ------------------------------------------------------------
@pytest.mark.parametrize(("model_id", "says"), [
    ("openai/", "no model name after 'openai/'"),
    ("openai/?temperature=0", "no model name after 'openai/'"),
    ("llamacpp:", "nothing after the prefix"),
    ("llamacpp:?n_ctx=512", "nothing after the prefix"),
])
def test_empty_model_name_is_refused(tmp_path, capsys, model_id, says):
    code, _, err = run_cli(_run_args(tmp_path, model_id), capsys)
    assert code == 2 and says in one_line(err)


def test_litellm_id_without_provider_is_still_accepted():
    from slmbench.models.litellm_api import create

    assert create("gpt-4o-mini", {}).litellm_id == "gpt-4o-mini"


# -- item 5: prompt placeholders -------------------------------------------------------------
def _task(tmp_path: Path, prompt: dict, **more) -> Path:
    write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "text": "hello", "label": "a"},
                                       {"id": "2", "text": "bye", "label": "b"}])
    return write_task(tmp_path, {"name": "t", "kind": "classification",
                                 "dataset": {"path": "d.jsonl"}, "labels": ["a", "b"],
                                 "prompt": prompt, **more})


@pytest.mark.parametrize(("prompt", "field", "value", "says"), [
    ({"instruction": "Pick one of:\n{label}"}, "prompt.instruction", "{label}",
     "unknown placeholder {label} (known here: {fallback}, {fields}, {label_descriptions}, "
     "{labels}, {routes}"),
    ({"template": "Text: {text} ({labels})"}, "prompt.template", "{labels}",
     "unknown placeholder {labels} (known here: {text}"),
    ({"instruction": 'Answer {"label": x} from {labels}'}, "prompt.instruction", "{",
     "stray '{' at character 8: write {{ for a literal brace"),
    ({"instruction": "{labels} }"}, "prompt.instruction", "}", "stray '}'"),
])
def test_unknown_placeholder_or_stray_brace_is_refused(tmp_path, capsys, prompt, field, value,
                                                       says):
    path = _task(tmp_path, prompt)
    code, _, err = run_cli(["validate", str(path)], capsys)
    line = one_line(err)
    assert code == 2
    assert str(path) in line and f"field '{field}'" in line and f"value {value!r}" in line
    assert says in line


def test_placeholder_of_a_prompt_variant_is_checked(tmp_path, capsys):
    path = _task(tmp_path, {"instruction": "{labels}"},
                 prompts={"terse": {"instruction": "Labels: {lables}"}})
    code, _, err = run_cli(["validate", str(path)], capsys)
    line = one_line(err)
    assert code == 2 and "field 'prompts.terse.instruction'" in line and "{lables}" in line


def test_escaped_braces_reach_the_model_as_single_braces(tmp_path):
    from slmbench.runner.run import load_tasks
    from slmbench.tasks import build_messages

    path = _task(tmp_path, {"instruction": 'One of:\n{labels}\nAnswer {{"label": x}}.',
                            "template": "{{{text}}}"})
    task = load_tasks([path])[0]
    messages = build_messages(task.spec, "a {labels} b")
    assert messages[0]["content"] == 'One of:\n- a\n- b\nAnswer {"label": x}.'
    assert messages[-1]["content"] == "{a {labels} b}"  # the item's braces are its own


def test_a_value_filled_early_is_not_filled_again():
    """A chain fills {classes} first and {labels} later: a class description that holds the
    text '{labels}' is sent as written, not replaced by the label list."""
    from slmbench.tasks.prompts import fill, render

    first = fill("{classes} | {labels} | {{x}}", {"classes": "- c: uses {labels}"})
    assert render(first, {"labels": "- a"}) == "- c: uses {labels} | - a | {x}"


def test_bundled_tasks_pass_the_placeholder_check():
    from slmbench.tasks.prompts import check_placeholders

    files = sorted((REPO / "tasks").rglob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        check_placeholders(path, yaml.safe_load(path.read_text(encoding="utf-8")) or {})


# -- item 7: run ids -------------------------------------------------------------------------
@pytest.mark.parametrize("run_id", ["../escape", "a/b", "", ".", "..", "x/../..", "a\\b"])
def test_run_id_that_leaves_the_results_folder_is_refused(tmp_path, capsys, run_id):
    results = tmp_path / "inner" / "results"
    code, _, err = run_cli(["run", str(ROUTING), "-m", "baseline:tfidf-logreg", "--limit", "1",
                            "-q", "--results-dir", str(results), "--run-id", run_id], capsys)
    line = one_line(err)
    assert code == 2 and "field '--run-id'" in line and "one folder name" in line
    assert not (tmp_path / "inner").exists()  # nothing written, inside or outside


def test_estimate_run_id_is_checked_too(tmp_path, capsys):
    code, _, err = run_cli(["estimate", str(ROUTING), "-m", "baseline:tfidf-logreg",
                            "--results-dir", str(tmp_path), "--run-id", "../x"], capsys)
    assert code == 2 and "field '--run-id'" in one_line(err)


# -- item 10: command-line mistakes ----------------------------------------------------------
@pytest.mark.parametrize(("args", "says"), [
    (["run", "--bogus"], "No such option: --bogus (see 'slmbench run --help')"),
    (["pricing", "check", "my-prices"], "unexpected extra argument"),
    (["pricing", "show", "--date"], "No such option: --date"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["run", "--limit", "many"], "Invalid value for '--limit'"),
    (["report"], "Missing argument"),
])
def test_command_line_mistake_is_one_line_and_exit_2(capsys, args, says):
    code, _, err = run_cli(args, capsys)
    assert code == 2 and says in one_line(err)


def test_version(capsys):
    from slmbench import __version__

    code, out, err = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"slmbench {__version__}" and not err


# -- item 12: one file mode for every result file ---------------------------------------------
def test_result_files_share_one_mode(tmp_path, capsys, cls_task):
    code, _, _ = run_cli(["run", str(cls_task), "-m", "baseline:tfidf-logreg", "-q",
                          "--results-dir", str(tmp_path / "r"), "--run-id", "perm"], capsys)
    assert code == 0
    mask = os.umask(0o022)
    os.umask(mask)
    run = tmp_path / "r" / "perm"
    modes = {name: stat.S_IMODE((run / name).stat().st_mode)
             for name in ("items.jsonl", "summary.json", "manifest.json")}
    assert modes == dict.fromkeys(modes, 0o666 & ~mask), modes


def test_library_run_id_that_leaves_the_results_folder_is_refused(tmp_path):
    from slmbench.errors import InputError
    from slmbench.runner.run import run_benchmark

    with pytest.raises(InputError, match="a run id is one folder name"):
        run_benchmark([REPO / "tasks" / "support_routing.yaml"], ["baseline:tfidf-logreg"],
                      results_dir=tmp_path / "results", run_id="../escape")
    assert not (tmp_path / "escape").exists()
