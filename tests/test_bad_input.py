"""Bad input catalogue: each case must give exit code 2 and ONE line naming file/field/value.

Every case writes its own files under tmp_path and runs the real CLI entry point. Model calls
never happen: validation runs before any model is loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import run_cli, write_jsonl

GOOD_ROWS = [{"id": "1", "text": "hello", "label": "a"}, {"id": "2", "text": "bye", "label": "b"}]


def base_spec() -> dict:
    return {"name": "t", "kind": "classification", "dataset": {"path": "d.jsonl"},
            "labels": ["a", "b"]}


def case_yaml(tmp: Path, text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    (tmp / "t.yaml").write_bytes(data)
    write_jsonl(tmp / "d.jsonl", GOOD_ROWS)
    return ["validate", str(tmp / "t.yaml")]


def case_spec(tmp: Path, mutate, rows=GOOD_ROWS, data_bytes: bytes | None = None) -> list[str]:
    spec = base_spec()
    mutate(spec)
    (tmp / "t.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    if data_bytes is not None:
        (tmp / "d.jsonl").write_bytes(data_bytes)
    else:
        write_jsonl(tmp / "d.jsonl", rows)
    return ["validate", str(tmp / "t.yaml")]


def _set(path: str, value):
    def mutate(spec: dict) -> None:
        node = spec
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is _DEL:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return mutate


_DEL = object()

# (case id, builder, substrings the one-line error must contain)
CASES = [
    ("malformed-yaml", lambda t: case_yaml(t, "name: [unclosed\nkind: x"), ["t.yaml", "YAML"]),
    ("yaml-not-mapping", lambda t: case_yaml(t, "- a\n- b\n"), ["t.yaml", "mapping"]),
    ("yaml-not-utf8", lambda t: case_yaml(t, "name: café\nkind: x".encode("latin-1")),
     ["t.yaml", "not UTF-8"]),
    ("unknown-kind", lambda t: case_spec(t, _set("kind", "ranking")), ["kind", "'ranking'"]),
    ("missing-name", lambda t: case_spec(t, _set("name", _DEL)), ["field 'name'"]),
    ("name-wrong-type", lambda t: case_spec(t, _set("name", 42)), ["field 'name'", "42"]),
    ("unknown-key", lambda t: case_spec(t, _set("lables", ["a"])), ["lables"]),
    ("missing-dataset", lambda t: case_spec(t, _set("dataset", _DEL)), ["field 'dataset'"]),
    ("missing-dataset-file", lambda t: case_spec(t, _set("dataset.path", "nope.jsonl")),
     ["nope.jsonl", "not found"]),
    ("bad-file-type", lambda t: case_spec(t, _set("dataset.path", "d.txt")), ["d.txt"]),
    ("empty-dataset", lambda t: case_spec(t, lambda s: None, data_bytes=b""), ["d.jsonl", "empty"]),
    ("jsonl-line-not-json", lambda t: case_spec(
        t, lambda s: None, data_bytes=b'{"id": "1", "text": "x", "label": "a"}\n{oops\n'),
     ["d.jsonl", "line 2"]),
    ("data-not-utf8", lambda t: case_spec(
        t, lambda s: None, data_bytes='{"id": "1", "text": "caf\u00e9", "label": "a"}\n'.encode(
            "latin-1")), ["d.jsonl", "UTF-8"]),
    ("missing-text-column", lambda t: case_spec(t, _set("dataset.columns", {"text": "body"})),
     ["body", "dataset.columns.text"]),
    ("missing-label-column", lambda t: case_spec(t, _set("dataset.columns", {"label": "intent"})),
     ["intent"]),
    ("gold-outside-labels", lambda t: case_spec(
        t, lambda s: None, rows=GOOD_ROWS + [{"id": "3", "text": "x", "label": "zzz"}]),
     ["d.jsonl", "'zzz'", "label set"]),
    ("gold-missing", lambda t: case_spec(
        t, lambda s: None, rows=GOOD_ROWS + [{"id": "3", "text": "x", "label": None}]),
     ["d.jsonl", "no gold label"]),
    ("duplicate-ids", lambda t: case_spec(
        t, lambda s: None, rows=GOOD_ROWS + [{"id": "1", "text": "again", "label": "a"}]),
     ["duplicate item id", "'1'"]),
    ("empty-text", lambda t: case_spec(
        t, lambda s: None, rows=GOOD_ROWS + [{"id": "3", "text": "  ", "label": "a"}]),
     ["no text"]),
    ("labels-empty", lambda t: case_spec(t, _set("labels", [])), ["labels"]),
    ("labels-duplicate", lambda t: case_spec(t, _set("labels", ["a", "b", "a"])),
     ["labels[2]", "twice"]),
    ("from-train-without-train", lambda t: case_spec(t, _set("labels", "from_train")),
     ["train_split"]),
    ("template-without-text", lambda t: case_spec(t, _set("prompt", {"template": "Q: {item}"})),
     ["prompt.template"]),
    ("routing-fallback-unknown", lambda t: case_spec(t, lambda s: s.update(
        kind="routing", labels=None, routes=[{"name": "a"}, {"name": "b"}], fallback="c")
        or s.pop("labels")), ["fallback", "'c'"]),
    ("routing-one-route", lambda t: case_spec(t, lambda s: s.update(
        kind="routing", routes=[{"name": "a"}], fallback="a") or s.pop("labels")), ["routes"]),
    ("extraction-bad-field-type", lambda t: case_spec(t, lambda s: s.update(
        kind="extraction", fields=[{"name": "x", "type": "date"}]) or s.pop("labels")),
     ["fields[0].type", "'date'"]),
    ("labels-on-extraction", lambda t: case_spec(t, lambda s: s.update(
        kind="extraction", fields=["x"])), ["labels", "does not apply"]),
    ("limit-negative", lambda t: case_spec(t, _set("dataset.limit", -5)), ["dataset.limit", "-5"]),
    ("few-shot-label-unknown", lambda t: case_spec(
        t, _set("few_shot", [{"text": "x", "answer": "q"}])), ["few_shot[0].answer", "'q'"]),
    ("split-without-file", lambda t: case_spec(t, _set("dataset.train_split", "train")),
     ["dataset.train_split", "'train'"]),
    ("task-file-missing", lambda t: ["validate", str(t / "absent.yaml")],
     ["absent.yaml", "not found"]),
]


@pytest.mark.parametrize("case_id, build, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_task_input_gives_one_line_and_exit_2(tmp_path, capsys, case_id, build, expected):
    code, out, err = run_cli(build(tmp_path), capsys)
    assert code == 2, (case_id, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in expected:
        assert needle in lines[0], (needle, lines[0])


MODEL_CASES = [
    ("unknown-prefix", "foo:bar", ["--model", "'foo:bar'", "unknown model prefix"]),
    ("missing-gguf", "llamacpp:/nowhere/model.gguf", ["/nowhere/model.gguf", "not found"]),
    ("not-a-gguf", "llamacpp:{tmp}/fake.gguf", ["fake.gguf", "not a GGUF"]),
    ("api-key-in-id", "openai/x?api_key=sk-live-123456789", ["environment only"]),
    ("unknown-baseline", "baseline:bert", ["baseline:bert", "tfidf-logreg"]),
    ("unknown-setting", "llamacpp:smollm2?n_gpus=1", ["n_gpus=1"]),
]


@pytest.mark.parametrize("case_id, model, expected", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_bad_model_ids(tmp_path, capsys, cls_task, case_id, model, expected):
    (tmp_path / "fake.gguf").write_bytes(b"NOPE" * 10)
    model = model.format(tmp=tmp_path)
    code, out, err = run_cli(["run", str(cls_task), "-m", model, "--results-dir",
                              str(tmp_path / "res"), "-q"], capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    for needle in expected:
        assert needle in err
    assert "sk-live-123456789" not in err
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_bad_cli_option(tmp_path, capsys, cls_task):
    code, _, err = run_cli(["run", str(cls_task), "--concurrency", "0", "-q"], capsys)
    assert code == 2 and "--concurrency" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["run", str(cls_task), "--limit", "-1", "-q"], capsys)
    assert code == 2 and "--limit" in err
    code, _, err = run_cli(["report", str(tmp_path / "nope")], capsys)
    assert code == 2 and "nope" in err


def test_bad_pricing_input(tmp_path, capsys, cls_task):
    run = ["run", str(cls_task), "-m", "baseline:tfidf-logreg", "-q",
           "--results-dir", str(tmp_path / "res")]
    code, _, err = run_cli([*run, "--hardware", "aws-nope"], capsys)
    assert code == 2 and "--hardware" in err and "'aws-nope'" in err
    code, _, err = run_cli([*run, "--pricing", str(tmp_path / "missing")], capsys)
    assert code == 2 and "--pricing" in err and "missing" in err
    code, _, err = run_cli([*run, "--price-date", "2026/11/22"], capsys)
    assert code == 2 and "--price-date" in err and "2026/11/22" in err
    sheets = tmp_path / "mine" / "acme"
    sheets.mkdir(parents=True)
    (sheets / "2026-11-01.yaml").write_text(
        "provider: acme\ncurrency: USD\nunit: per_1m_tokens\neffective_from: 2026-11-01\n"
        "retrieved: 2026-11-01\nsource: [https://acme.example/pricing]\n"
        "models:\n  - {id: acme-small, input: -0.5, output: 1.0}\n")
    code, _, err = run_cli([*run, "--pricing", str(tmp_path / "mine")], capsys)
    assert code == 2 and "2026-11-01.yaml" in err and "-0.5" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["pricing", "check", "--pricing", str(tmp_path / "mine")], capsys)
    assert code == 1 and "-0.5" in out + err
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())
