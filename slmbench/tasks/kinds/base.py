"""What a task kind is: everything that differs between classification, routing, extraction,
chain (and any kind a plugin adds), held by one object instead of branches on a string.

A :class:`TaskKind` is consulted at each stage an item goes through:

* **spec** -- the YAML keys the kind takes (:attr:`keys`, :attr:`prompt_keys`, with their JSON
  Schema in :attr:`key_schemas`), its dataset column roles, its default instruction, and
  :meth:`parse` of its own keys into :class:`~slmbench.tasks.spec.TaskSpec` fields;
* **data** -- :meth:`gold` out of a dataset row, and the labels a gold or a few-shot answer
  names (checked against the task's label set);
* **requests** -- :meth:`request_parts`: the prompt, the closed answer set a backend may
  decode over, the JSON schema of a structured answer, the output budget;
* **rows** -- :meth:`score`: a completion into a row's ``answer``, ``invalid``, ``correct``;
* **summaries** -- :meth:`metrics` of stored rows, the manifest entry they need
  (:meth:`describe`, :meth:`metric_kwargs`), :meth:`row_checker` for corrupt stored rows, and
  for kinds whose rows fit typed columns (:attr:`columnar`) :meth:`predicted_label` and
  :meth:`coded_metrics`;
* **baseline** -- :meth:`fit_classifier`, what the TF-IDF baseline trains;
* **report** -- :meth:`report_table` and :meth:`report_model`, the markdown section.

The defaults are those of single-label classification, which most kinds refine. Heavy
libraries (numpy, sklearn) are imported inside methods: kinds are loaded to validate a task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from slmbench.errors import InputError
from slmbench.records import ERROR, INVALID

if TYPE_CHECKING:
    from slmbench.models.base import Completion
    from slmbench.tasks.loading import Item, LoadedTask
    from slmbench.tasks.spec import _V, TaskSpec

#: (field, value, what it must be) of a stored row value that scoring cannot read
BadValue = tuple[str, Any, str]


class RequestParts(NamedTuple):
    """What every request of a task shares, computed once per task."""

    prompt_spec: TaskSpec  # the spec ``build_messages`` renders
    choices: tuple[str, ...] | None  # closed answer set: token-trie / enum decoding
    json_schema: dict[str, Any] | None  # a structured answer: grammar / structured output
    max_tokens: int


# JSON Schema of YAML keys several kinds share
LABELS_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "object", "required": ["name"], "additionalProperties": False,
             "properties": {"name": {"type": "string", "minLength": 1},
                            "description": {"type": "string", "description": (
                                "One line about the label: {label_descriptions} in a "
                                "prompt lists it.")}}},
        ]}},
        {"enum": ["from_train", "from_data"]},
    ]
}
FIELDS_SCHEMA: dict[str, Any] = {
    "type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["name"], "additionalProperties": False,
              "properties": {"name": {"type": "string"},
                             "type": {"enum": ["string", "integer", "number", "boolean",
                                               "list"]},
                             "required": {"type": "boolean"},
                             "description": {"type": "string"}}},
}


class TaskKind:
    """One kind of task. Subclasses set the class attributes and override what differs."""

    name: str = ""
    #: top-level YAML keys this kind takes beyond the common ones (what :meth:`parse` reads)
    keys: tuple[str, ...] = ("labels",)
    #: the kind's own keys under ``prompt``
    prompt_keys: tuple[str, ...] = ()
    #: JSON Schema of each key in :attr:`keys` and :attr:`prompt_keys` (``prompt.<key>``)
    key_schemas: dict[str, Any] = {"labels": LABELS_SCHEMA}
    #: keys a task of this kind must have
    required_keys: tuple[str, ...] = ("labels",)
    #: dataset column roles (role → column, default the role's name)
    columns: tuple[str, ...] = ("id", "text", "label")
    #: roles whose column may be missing from the file (gold spread over other columns)
    optional_columns: tuple[str, ...] = ()
    #: the role holding the gold answer (named in errors about it)
    gold_role: str = "label"
    #: what the closed answer set is called in errors
    choice_noun: str = "label set"
    default_instruction: str = ""
    default_max_tokens: int = 32
    #: True when the summary can read this kind's rows as typed columns (analysis/columns.py):
    #: one label string of gold and prediction per row; a kind opts in
    columnar: bool = False
    #: True when the TF-IDF baseline can learn it (:meth:`fit_classifier`); a kind opts in
    trains_classifier: bool = False
    #: summary keys the JSON report carries for this kind beyond the common ones
    detail_keys: tuple[str, ...] = ()
    #: JSON Schema of a few-shot answer (the Python check is :meth:`check_shot_answer`)
    shot_answer_schema: dict[str, Any] = {"type": "string"}

    def __repr__(self) -> str:
        return f"<task kind {self.name}>"

    # -- spec ---------------------------------------------------------------------------
    def parse(self, v: _V, data: dict[str, Any], prompt: dict[str, Any],
              train_split: str | None) -> dict[str, Any]:
        """The :class:`TaskSpec` fields this kind's keys give (a plugin's own keys go under
        ``extra``)."""
        return parse_labels(v, data, train_split)

    def check_shot_answer(self, v: _V, answer: Any, where: str) -> None:
        """A few-shot answer of the wrong type is refused where it is written."""
        if not isinstance(answer, str):
            raise v.fail("must be a string", where, answer)

    def check_shots(self, v: _V, fields: dict[str, Any],
                    shots: tuple[dict[str, Any], ...]) -> None:
        """Checks of few-shot answers against the parsed spec (``fields``: TaskSpec fields)."""

    def choices(self, spec: TaskSpec) -> tuple[str, ...] | None:
        """The closed answer set gold answers are checked against (labels, or route names)."""
        return spec.labels

    # -- data ---------------------------------------------------------------------------
    def gold(self, spec: TaskSpec, row: dict[str, Any], item_id: str, where: str) -> Any:
        cols = spec.dataset.columns
        gold = row.get(cols[self.gold_role])
        if gold is None or (isinstance(gold, str) and not gold.strip()):
            raise InputError(f"item '{item_id}' has no gold label", file=where,
                             field=cols[self.gold_role], value=gold)
        return str(gold)

    def gold_labels(self, gold: Any) -> tuple[Any, ...]:
        """The labels a gold answer names: each must be in the label set."""
        return (gold,)

    def shot_labels(self, spec: TaskSpec, answer: Any) -> tuple[Any, ...]:
        """The labels a few-shot answer names: each must be in the label set."""
        return (answer,)

    def check_labels(self, spec: TaskSpec, allowed: set[str]) -> None:
        """Checks of the spec against the label set once it is known (``from_train``)."""

    def answer_text(self, spec: TaskSpec, answer: Any) -> str:
        """A few-shot answer as the assistant turn that teaches it."""
        return str(answer)

    # -- requests and rows --------------------------------------------------------------
    def request_parts(self, task: LoadedTask) -> RequestParts:
        spec = task.spec
        return RequestParts(spec, spec.choices, None,
                            spec.max_tokens or self.default_max_tokens)

    def blank_row(self, spec: TaskSpec) -> dict[str, Any]:
        """Row fields of this kind beyond the common ones, before any answer."""
        return {}

    def score(self, scorer: Any, row: dict[str, Any], comp: Completion, item: Item) -> None:
        """Set ``answer``, ``invalid`` and ``correct`` of ``row`` from ``comp``
        (``scorer``: the task's :class:`~slmbench.runner.items.ItemScorer`)."""
        from slmbench.scoring.parsing import parse_label

        answer = parse_label(comp.text, scorer.matcher)
        row["answer"] = answer
        row["invalid"] = answer is None
        row["correct"] = answer == item.gold

    # -- summaries ----------------------------------------------------------------------
    def describe(self, spec: TaskSpec) -> dict[str, Any]:
        """What the manifest records of the task beyond the common entries: enough to
        rescore its rows without the YAML (``unseen_gold: count_wrong`` labels included:
        their rows are valid and count wrong)."""
        return {"labels": [*(spec.labels or ()), *spec.unseen_labels]}

    def metric_kwargs(self, task_info: dict[str, Any]) -> dict[str, Any]:
        """What :meth:`metrics` needs of a task besides its rows, from its manifest entry."""
        return {"labels": task_info.get("labels", [])}

    def allowed_golds(self, task_info: dict[str, Any]) -> frozenset[str]:
        """The gold labels a stored row may hold (task loading refuses any other)."""
        return frozenset(self.metric_kwargs(task_info).get("labels") or ())

    def metrics(self, rows: Sequence[dict[str, Any]], *, seed: int = 0,
                **kwargs: Any) -> dict[str, Any]:
        """The kind's figures of one task × model from its stored rows (``accuracy`` is what
        $ per correct answer divides by); the error / invalid / correct counts are added by
        :func:`~slmbench.scoring.task_metrics`."""
        from slmbench.scoring.classification import classification_metrics

        gold = [r["gold"] for r in rows]
        pred = [self.predicted_label(r) for r in rows]
        return classification_metrics(gold, pred, kwargs.get("labels", ()), seed=seed)

    def row_checker(self, task_info: dict[str, Any]
                    ) -> Callable[[dict[str, Any]], BadValue | None]:
        """A check of one stored row's gold and prediction (beyond its confidence): the
        first value of the wrong shape, or None."""
        labels = self.allowed_golds(task_info)

        def check(row: dict[str, Any]) -> BadValue | None:
            gold = row.get("gold")
            if not isinstance(gold, str) or gold not in labels:
                return "gold", gold, f"is not one of the task's {self.choice_noun_plural}"
            if not isinstance(self.predicted_label(row), str):  # what the columnar read checks
                return (self.prediction_field, row.get(self.prediction_field),
                        "must be a string or null")
            return None

        return check

    #: the row field holding what a label row predicted, and what its labels are called
    prediction_field: str = "answer"
    choice_noun_plural: str = "labels"

    def priced(self, entry: dict[str, Any]) -> None:
        """Figures of a summary entry that need its cost (``total_usd``), added in place."""

    # columnar kinds
    def predicted_label(self, row: dict[str, Any]) -> str:
        """What a label row predicted, as scored: a failed call is ``<error>``, an invalid
        answer ``<invalid>``."""
        if row.get("error"):
            return ERROR
        return row["answer"] if row.get("answer") is not None else INVALID

    def coded_metrics(self, gold: Any, pred: Any, strings: Sequence[str], *, seed: int = 0,
                      **kwargs: Any) -> dict[str, Any]:
        """:meth:`metrics` from a columnar read: int codes into ``strings``."""
        import numpy as np

        from slmbench.scoring.classification import coded_classification_metrics, label_index

        labels = list(kwargs.get("labels", ()))
        index = label_index(labels)
        lut = np.fromiter((index.get(s, -1) for s in strings), dtype=np.int64,
                          count=len(strings))
        hit = gold == pred
        return coded_classification_metrics(lut[gold], lut[pred], int(np.count_nonzero(hit)),
                                            labels, seed=seed)

    # -- baseline -----------------------------------------------------------------------
    @property
    def calibrates(self) -> bool:
        """Whether :meth:`fit_classifier` honours ``calibrate``: the default one does; a kind
        that brings its own classifier brings its own calibration, or none."""
        return type(self).fit_classifier is TaskKind.fit_classifier

    def fit_classifier(self, task: LoadedTask, features: Any, settings: dict[str, Any]
                       ) -> Callable[[str], tuple[str, float]]:
        """Train the TF-IDF baseline's classifier on the train split: a function from an
        item's text to (answer text, confidence). Default: one label per item, logistic
        regression, confidence the chosen class's probability."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        texts = [it.text for it in task.train]
        labels = [it.gold for it in task.train]
        if len(set(labels)) < 2:
            raise InputError("train split needs at least two distinct labels",
                             file=task.spec.path, field="dataset.train_split",
                             value=task.spec.dataset.train_split)
        clf = LogisticRegression(C=settings["C"], max_iter=settings["max_iter"],
                                 random_state=settings["seed"])
        method = settings.get("calibrate")
        if method:
            from slmbench.tasks.kinds.calibration import calibrated

            clf = calibrated(clf, method, labels, task)
        pipeline = make_pipeline(features, clf).fit(texts, labels)

        def predict(text: str) -> tuple[str, float]:
            proba = pipeline.predict_proba([text])[0]
            best = int(proba.argmax())
            return str(pipeline.classes_[best]), float(proba[best])

        return predict

    # -- report -------------------------------------------------------------------------
    def report_table(self, rows: list[dict[str, Any]], multi: bool) -> list[str]:
        """Markdown of the task's section above the per-model parts (``rows``: leaderboard
        rows of the task)."""
        return []

    def report_model(self, entry: dict[str, Any]) -> list[str]:
        """Markdown of one model's part of the task's section (not called for a failed
        model): a live cascade's summary, else :meth:`report_details`."""
        from slmbench.markdown import cascade_part, is_cascade

        if is_cascade(entry):
            return [cascade_part(entry)]
        return self.report_details(entry)

    def report_details(self, entry: dict[str, Any]) -> list[str]:
        """The per-label table, the most confused pairs and the calibration of a model."""
        return label_parts(entry)


def _label_rows(entry: dict[str, Any]) -> list[list[Any]]:
    from slmbench.markdown import fmt

    per_class = entry.get("per_class") or {}
    confusion = entry.get("confusion") or {}
    labels, matrix = confusion.get("labels") or [], confusion.get("matrix") or []
    predicted = {lab: sum(row[j] for row in matrix) for j, lab in enumerate(labels)} \
        if matrix else {}
    out = []
    for label, m in per_class.items():
        if m.get("support", 0) == 0 and predicted.get(label, 1) == 0:
            continue  # neither in gold nor predicted: no evidence either way
        out.append([label, fmt("precision", m.get("precision")),
                    fmt("recall", m.get("recall")), fmt("f1", m.get("f1")), m.get("support")])
    return out


def label_parts(entry: dict[str, Any]) -> list[str]:
    """Markdown of a label task's model: per-label figures, the most confused pairs, and the
    calibration of its confidences."""
    from slmbench.markdown import md_table, reliability_part
    from slmbench.scoring.classification import most_confused

    parts = []
    label_rows = _label_rows(entry)
    if label_rows:
        parts.append(md_table(["label", "precision", "recall", "F1", "support"],
                              label_rows, ["l", "r", "r", "r", "r"]))
    pairs = most_confused(entry["confusion"]) if entry.get("confusion") else []
    if pairs:
        parts.append("Most confused (gold → predicted):\n")
        parts.append(md_table(["gold", "predicted", "count"],
                              [[g, p, c] for g, p, c in pairs], ["l", "l", "r"]))
    else:
        parts.append("No confusions between labels.\n")
    parts.extend(reliability_part(entry))
    return parts


def parse_labels(v: _V, data: dict[str, Any], train_split: str | None) -> dict[str, Any]:
    """``labels``: a list, or ``from_train`` (filled in when the train split is loaded). A
    label may be ``{name, description}``: the description is what a prompt that describes its
    labels (``{label_descriptions}``) says of it, as routes have theirs."""
    from slmbench.tasks.spec import _parse_str_list

    raw = data.get("labels")
    if raw == "from_train":
        if not train_split:
            raise v.fail("'from_train' needs dataset.train_split", "labels", raw)
        return {"labels": None, "labels_from_train": True}
    descriptions: dict[str, str] = {}
    if isinstance(raw, list) and any(isinstance(item, dict) for item in raw):
        names = []
        for i, item in enumerate(raw):
            if isinstance(item, dict):
                unknown = sorted(set(map(str, item)) - {"name", "description"})
                if unknown:
                    raise v.fail("unknown key (expected name, description)",
                                 f"labels[{i}].{unknown[0]}", item.get(unknown[0]))
                name = v.get(item, "name", str, f"labels[{i}]", required=True)
                description = v.get(item, "description", str, f"labels[{i}]", default="")
                if description:
                    descriptions[name] = " ".join(description.split())
                item = name
            names.append(item)
        raw = names
    return {"labels": _parse_str_list(v, raw, "labels"), "labels_from_train": False,
            "label_descriptions": descriptions}
