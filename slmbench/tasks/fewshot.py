"""Prompt variants and few-shot examples retrieved from the train split.

A task's prompt is not one fixed thing: a user wants to know whether a model does better with
a terser instruction, with label descriptions, or with examples close to the item in hand. A
:class:`PromptPlan` is one such choice for one task -- a named prompt of the task's ``prompts``
(``?prompt=NAME`` on a model id) and a number of retrieved examples (the task's ``few_shot:
{from: train, k: ...}``, or ``?k=N``) -- and renders the messages of each item under it.

Retrieved examples come after the fixed instruction (and its label list) and before the item,
so the shared prefix stays the same for every item: llama.cpp's KV-cache reuse and providers'
prompt caching keep working, and only the examples and the item are new per item. The chosen
train ids are returned with the messages so that a row can say exactly which examples its
answer saw (and a run can be audited or reproduced from them).

How examples are chosen varies, so each way is an object in :data:`SELECTORS`:

* ``similar`` -- the k train items nearest to the item by cosine (ties: earlier train item
  first), the nearest placed last, next to the item. Nearness is measured ``by: tfidf`` (the
  default: word and bigram TF-IDF, fitted on the train split) or ``by: embed`` (sentence
  embeddings of a GGUF model through llama.cpp, ``embed_model``, default the embedded
  SmolLM2: the embed baseline's vectors and on-disk cache). Embeddings find paraphrases that
  share no words, at the price of a model pass per text; which wins on a task is a measured
  question, so both are rows of one leaderboard (``?by=embed``);
* ``random`` -- k train items drawn once per task with the seed: a fixed block that is part of
  the cached prefix, the control for ``similar``;
* ``stratified`` -- like ``random`` but one item per label in turn (most frequent labels
  first), so the examples cover as many labels as k allows.

The task layer does not load models: ``by: embed`` vectors come from the runner, which hands
:class:`PromptPlan` a factory for them (``vectors=``); ``tfidf`` is built in.

Only kinds whose gold answer is what a few-shot answer looks like (those the baselines train
on: ``trains_classifier``) can take retrieved examples. Heavy libraries are imported lazily.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from slmbench.errors import InputError

if TYPE_CHECKING:
    from slmbench.tasks.loading import Item, LoadedTask
    from slmbench.tasks.spec import TaskSpec

#: model settings that pick a prompt variant (what backends accept and name the model by)
PROMPT_SETTINGS = ("prompt", "k", "select", "by")
FEW_SHOT_KEYS = ("from", "k", "select", "seed", "by", "embed_model")
DEFAULT_SELECT = "similar"
#: how ``similar`` measures nearness (``embed``: vectors the runner supplies)
BY = ("tfidf", "embed")
DEFAULT_BY = "tfidf"
DEFAULT_EMBED_MODEL = "smollm2"


@dataclass(frozen=True)
class FewShotConfig:
    """``few_shot: {from: train, k: 8, select: similar, seed: 0, by: tfidf}`` of a task."""

    k: int
    select: str = DEFAULT_SELECT
    seed: int = 0
    source: str = "train"
    by: str = DEFAULT_BY
    #: the GGUF (path, or an embedded model's name) whose vectors ``by: embed`` uses
    embed_model: str = DEFAULT_EMBED_MODEL

    @property
    def needs_vectors(self) -> bool:
        """Examples are chosen by vectors the runner supplies (not the built-in TF-IDF)."""
        return bool(self.k) and self.select == "similar" and self.by != DEFAULT_BY


class Vectors(Protocol):
    """Texts as vectors of unit length, so that a dot product is their cosine."""

    def fit(self, texts: Sequence[str]) -> None:
        """Vectorise the train texts (the ones :meth:`scores` compares against)."""

    def transform(self, texts: Sequence[str]) -> list[Any]:
        """One query vector per text."""

    def scores(self, query: Any) -> Any:
        """Cosine of ``query`` to every fitted text, a 1-D numpy array in fit order."""


class TfidfVectors:
    """Word and bigram TF-IDF (sublinear tf, L2-normalised rows) fitted on the train split."""

    def fit(self, texts: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(list(texts))

    def transform(self, texts: Sequence[str]) -> list[Any]:
        rows = self.vectorizer.transform(list(texts))
        return [rows[i] for i in range(rows.shape[0])]

    def scores(self, query: Any) -> Any:
        import numpy as np

        return np.asarray((self.matrix @ query.T).todense()).ravel()


class Selector:
    """Picks few-shot examples among the train items. ``per_item``: the choice depends on the
    item (no shared example block)."""

    per_item = False

    def __init__(self, train: Sequence[Item], seed: int, vectors: Vectors | None = None) -> None:
        self.train = train
        self.seed = seed

    def prefetch(self, texts: Sequence[str]) -> None:
        """Get ready to pick for these texts at once (a batch is cheaper than one by one)."""

    def pick(self, text: str, k: int, exclude: str | None = None) -> list[int]:
        """Indices into the train items, in prompt order (``exclude``: an item id that must
        not be its own example, when the scored split is the train split)."""
        raise NotImplementedError


class SimilarSelector(Selector):
    per_item = True

    def __init__(self, train: Sequence[Item], seed: int, vectors: Vectors | None = None) -> None:
        super().__init__(train, seed)
        self.vectors: Vectors = vectors if vectors is not None else TfidfVectors()
        self.vectors.fit([it.text for it in train])
        self._queries: dict[str, Any] = {}

    def prefetch(self, texts: Sequence[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._queries]
        if new:
            self._queries.update(zip(new, self.vectors.transform(new), strict=True))

    def scores(self, text: str) -> Any:
        """Cosine similarity of ``text`` to every train item."""
        self.prefetch([text])
        return self.vectors.scores(self._queries[text])

    def pick(self, text: str, k: int, exclude: str | None = None) -> list[int]:
        import numpy as np

        scores = self.scores(text)
        if exclude is not None:
            for i, it in enumerate(self.train):
                if it.id == exclude:
                    scores[i] = -np.inf
        # stable: equal scores keep train order, so the choice is reproducible
        order = np.argsort(-scores, kind="stable")
        best = [int(i) for i in order[:k] if np.isfinite(scores[i])]
        return best[::-1]  # the nearest last, next to the item


class RandomSelector(Selector):
    def __init__(self, train: Sequence[Item], seed: int, vectors: Vectors | None = None) -> None:
        super().__init__(train, seed)
        self._cache: dict[int, list[int]] = {}

    def block(self, k: int) -> list[int]:
        if k not in self._cache:
            self._cache[k] = random.Random(self.seed).sample(range(len(self.train)),
                                                            min(k, len(self.train)))
        return self._cache[k]

    def pick(self, text: str, k: int, exclude: str | None = None) -> list[int]:
        return [i for i in self.block(k + (exclude is not None)) if self.train[i].id != exclude][:k]


class StratifiedSelector(RandomSelector):
    def block(self, k: int) -> list[int]:
        if k not in self._cache:
            rng = random.Random(self.seed)
            by_label: dict[str, list[int]] = {}
            for i, it in enumerate(self.train):
                by_label.setdefault(_label_key(it.gold), []).append(i)
            for pool in by_label.values():
                rng.shuffle(pool)
            labels = sorted(by_label, key=lambda lab: (-len(by_label[lab]), lab))
            out: list[int] = []
            depth = 0
            while len(out) < min(k, len(self.train)):
                for lab in labels:
                    if depth < len(by_label[lab]) and len(out) < k:
                        out.append(by_label[lab][depth])
                depth += 1
            self._cache[k] = out
        return self._cache[k]


def _label_key(gold: Any) -> str:
    if isinstance(gold, (list, tuple)):
        return "|".join(sorted(map(str, gold)))
    return str(gold)


#: select name → selector class (a new way of choosing examples is one entry)
SELECTORS: dict[str, type[Selector]] = {
    "similar": SimilarSelector,
    "random": RandomSelector,
    "stratified": StratifiedSelector,
}


# -- spec parsing ---------------------------------------------------------------------------
FEW_SHOT_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["k"],
    "description": ("Few-shot examples retrieved from the train split for each item, placed "
                    "after the instruction (k = 0: none)."),
    "properties": {"from": {"const": "train"}, "k": {"type": "integer", "minimum": 0},
                   "select": {"enum": list(SELECTORS)}, "seed": {"type": "integer"},
                   "by": {"enum": list(BY), "description": "how select: similar measures "
                          "nearness: TF-IDF cosine, or a GGUF model's embeddings"},
                   "embed_model": {"type": "string", "minLength": 1,
                                   "description": "the GGUF (path, relative to the task file, "
                                   "or an embedded model's name) for by: embed"}},
}
PROMPTS_SCHEMA: dict[str, Any] = {
    "type": "object", "minProperties": 1,
    "description": ("Named prompt variants a model picks with ?prompt=NAME: an instruction, "
                    "or a mapping of prompt keys that replace the task's prompt keys."),
    "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "object"}]},
}


def parse_few_shot_config(v: Any, value: dict[str, Any], kind: Any,
                          train_split: str | None) -> FewShotConfig:
    """``few_shot`` given as a mapping: retrieval from the train split."""
    unknown = sorted(set(map(str, value)) - set(FEW_SHOT_KEYS))
    if unknown:
        raise v.fail(f"unknown key (expected one of {', '.join(FEW_SHOT_KEYS)})",
                     f"few_shot.{unknown[0]}", value.get(unknown[0]))
    source = value.get("from", "train")
    if source != "train":
        raise v.fail("examples can only come from 'train'", "few_shot.from", source)
    k = v.get(value, "k", int, "few_shot", required=True)
    if k < 0:
        raise v.fail("must be 0 or more", "few_shot.k", k)
    select = v.get(value, "select", str, "few_shot", default=DEFAULT_SELECT)
    if select not in SELECTORS:
        raise v.fail(f"must be one of {', '.join(SELECTORS)}", "few_shot.select", select)
    seed = v.get(value, "seed", int, "few_shot", default=0)
    by = v.get(value, "by", str, "few_shot", default=DEFAULT_BY)
    if by not in BY:
        raise v.fail(f"must be one of {', '.join(BY)}", "few_shot.by", by)
    if by != DEFAULT_BY and select != "similar":
        raise v.fail("by: picks how select: similar measures nearness; this task selects "
                     f"'{select}'", "few_shot.by", by)
    embed_model = v.get(value, "embed_model", str, "few_shot", default=DEFAULT_EMBED_MODEL)
    if "embed_model" in value and by != "embed":
        raise v.fail("embed_model is for by: embed", "few_shot.embed_model", embed_model)
    if not embed_model.strip():
        raise v.fail("must name a GGUF file or an embedded model", "few_shot.embed_model",
                     embed_model)
    if ("/" in embed_model or embed_model.endswith(".gguf")) and v.path is not None:
        path = Path(embed_model).expanduser()  # a path is read relative to the task file
        embed_model = str(path if path.is_absolute() else Path(v.path).parent / path)
    if k and not train_split:
        raise v.fail("retrieved examples need dataset.train_split", "few_shot", value)
    if k and not kind.trains_classifier:
        raise v.fail(f"kind '{kind.name}' cannot take examples from its train split",
                     "few_shot", value)
    return FewShotConfig(k=k, select=select, seed=seed, by=by, embed_model=embed_model)


def parse_prompts(v: Any, value: Any, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``prompts``: name → the ``prompt`` mapping of that variant (the task's own prompt keys,
    overridden by the variant's). Each variant is validated as a whole task here."""
    from slmbench.tasks.spec import parse_task

    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise v.fail("must map prompt names to an instruction or prompt keys", "prompts", value)
    base = data.get("prompt") if isinstance(data.get("prompt"), dict) else {}
    out: dict[str, dict[str, Any]] = {}
    for name, variant in value.items():
        where = f"prompts.{name}"
        if not isinstance(name, str) or not name.strip():
            raise v.fail("must be a non-empty name", "prompts", name)
        if isinstance(variant, str):
            variant = {"instruction": variant}
        if not isinstance(variant, dict):
            raise v.fail("must be an instruction or a mapping of prompt keys", where, variant)
        merged = {**base, **variant}
        try:
            parse_task({k: val for k, val in data.items() if k != "prompts"} | {
                "prompt": merged}, v.path)
        except InputError as exc:
            fld = exc.field or ""
            fld = where + fld[len("prompt"):] if fld.startswith("prompt") else fld
            raise v.fail(exc.reason, fld or where, exc.value) from None
        out[name] = merged
    return out


# -- model settings -------------------------------------------------------------------------
def check_prompt_settings(task: LoadedTask, settings: dict[str, Any], model: str) -> None:
    """``?prompt=`` and ``?k=`` of a model fit this task: checked before any call."""
    spec = task.spec
    name = settings.get("prompt")
    if name is not None and name not in spec.prompts:
        known = ", ".join(spec.prompts) or "none"
        raise InputError(f"task '{spec.name}' has no prompt '{name}' (prompts: {known}); "
                         f"model {model}", file=spec.path, field="prompts", value=name)
    k = settings.get("k")
    for key in ("select", "by"):
        if k is None and settings.get(key) is not None:
            k = spec.few_shot_from.k if spec.few_shot_from else 0
            if not k:
                raise InputError(f"{key}= picks retrieved examples: give k= too, or "
                                 f"few_shot: {{from: train, k: N}} in the task (model {model})",
                                 file=spec.path, field="few_shot", value=None)
    config = effective_config(spec, settings.get("k"), settings.get("select"),
                              settings.get("by"))
    if config is not None and config.by != DEFAULT_BY and config.select != "similar":
        raise InputError(f"by={config.by} measures nearness for select=similar, not "
                         f"'{config.select}' (model {model})", file=spec.path,
                         field="few_shot.by", value=config.by)
    if k is not None and k > 0:
        from slmbench.tasks.kinds import get_kind

        kind = get_kind(spec.kind)
        if not task.train:
            raise InputError(f"k={k} needs examples from a train split (model {model})",
                             file=spec.path, field="dataset.train_split", value=None)
        if not kind.trains_classifier:
            raise InputError(f"kind '{kind.name}' cannot take examples from its train split "
                             f"(model {model})", file=spec.path, field="kind", value=kind.name)


def check_setting_values(settings: dict[str, Any]) -> None:
    """The type of ``prompt`` and ``k`` in a model id (what a backend's ``create`` checks)."""
    if "prompt" in settings and (not isinstance(settings["prompt"], str)
                                 or not settings["prompt"].strip()):
        raise InputError("prompt must name one of the task's prompts", field="--model",
                         value=f"prompt={settings['prompt']}")
    if "k" in settings and (type(settings["k"]) is not int or settings["k"] < 0):
        raise InputError("k must be a whole number >= 0", field="--model",
                         value=f"k={settings['k']}")
    if "select" in settings and settings["select"] not in SELECTORS:
        raise InputError(f"select must be one of {', '.join(SELECTORS)}", field="--model",
                         value=f"select={settings['select']}")
    if "by" in settings and settings["by"] not in BY:
        raise InputError(f"by must be one of {', '.join(BY)}", field="--model",
                         value=f"by={settings['by']}")


def effective_config(spec: TaskSpec, k: int | None = None, select: str | None = None,
                     by: str | None = None) -> FewShotConfig | None:
    """The task's ``few_shot`` retrieval with a model's ``?k=``, ``?select=``, ``?by=``."""
    config = spec.few_shot_from
    if k is not None:
        config = replace(config, k=k) if config else FewShotConfig(k=k)
    if config is not None:
        if select is not None:
            config = replace(config, select=select)
        if by is not None:
            config = replace(config, by=by)
    return config


def variant_name(name: str, settings: dict[str, Any]) -> str:
    """A model's name with its prompt variant (``openai/x?prompt=described&k=8``), written
    like the other settings that name a model (``reasoning_effort``): each combination is
    its own leaderboard row and Pareto point, and pricing still reads the id before ``?``."""
    shown = [f"{key}={settings[key]}" for key in PROMPT_SETTINGS
             if settings.get(key) is not None]
    if not shown:
        return name
    return name + ("&" if "?" in name else "?") + "&".join(shown)


# -- rendering ------------------------------------------------------------------------------
class PromptPlan:
    """One prompt variant of one task: the request parts and each item's messages."""

    def __init__(self, task: LoadedTask, prompt: str | None = None,
                 k: int | None = None, select: str | None = None, by: str | None = None,
                 vectors: Callable[[FewShotConfig], Vectors] | None = None) -> None:
        """``vectors``: builds the :class:`Vectors` of a ``by`` other than ``tfidf`` (the
        runner's; the task layer loads no model)."""
        from slmbench.tasks.kinds import get_kind
        from slmbench.tasks.loading import LoadedTask

        spec = variant_spec(task.spec, prompt)
        self.task = task if spec is task.spec else LoadedTask(spec, task.items, task.train,
                                                             task.fingerprint)
        self.kind = get_kind(spec.kind)
        self.parts = self.kind.request_parts(self.task)
        config = effective_config(spec, k, select, by)
        self.k = config.k if config and task.train else 0
        self.config = config
        self.selector: Selector | None = None
        #: wall and CPU seconds spent choosing examples (vectorising the train split and the
        #: items): work a deployment of this variant does too, priced as the pair's setup
        self.retrieval_s = self.retrieval_cpu_s = 0.0
        start, cpu = time.perf_counter(), time.process_time()
        if self.k:
            chosen: Vectors | None = None
            if config.needs_vectors:
                if vectors is None:
                    raise InputError(f"by: {config.by} needs vectors from the runner",
                                     file=spec.path, field="few_shot.by", value=config.by)
                chosen = vectors(config)
            self.selector = SELECTORS[config.select](task.train, config.seed, chosen)
            self._count(start, cpu)
        # the scored split is the train split: an item must not be its own example
        self._exclude = spec.dataset.split == spec.dataset.train_split
        self._picked: dict[str, tuple[str, ...]] = {}
        self._prefetched = False
        self._by_id: dict[str, Item] | None = None

    def shot_indices(self, item: Item) -> list[int]:
        if self.selector is None:
            return []
        start, cpu = time.perf_counter(), time.process_time()
        if self.selector.per_item and not self._prefetched:
            # the task's items in one batch (an embedding model's batch pass, not one per item)
            self._prefetched = True
            self.selector.prefetch([it.text for it in self.task.items])
        try:
            return self.selector.pick(item.text, self.k, item.id if self._exclude else None)
        finally:
            self._count(start, cpu)

    def _count(self, start: float, cpu: float) -> None:
        self.retrieval_s += time.perf_counter() - start
        self.retrieval_cpu_s += time.process_time() - cpu

    def shot_ids(self, item: Item) -> tuple[str, ...] | None:
        """The train ids of the examples ``item`` gets, in prompt order (None: no retrieval)."""
        if self.selector is None:
            return None
        if item.id not in self._picked:
            self._picked[item.id] = tuple(self.task.train[i].id
                                          for i in self.shot_indices(item))
        return self._picked[item.id]

    def messages(self, item: Item) -> list[dict[str, str]]:
        return self.messages_for(item.text, self.shot_ids(item))

    def messages_for(self, text: str, ids: Sequence[str] | None) -> list[dict[str, str]]:
        """The messages of an item given its example ids (a stored row's ``shots``
        reproduces its prompt exactly)."""
        from slmbench.tasks.prompts import build_messages

        spec = self.parts.prompt_spec
        if ids is not None:
            if self._by_id is None:
                self._by_id = {it.id: it for it in self.task.train}
            by_id = self._by_id
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise InputError("example id is not in the train split",
                                 file=spec.path, field="shots", value=missing[0])
            shots = tuple({"text": by_id[i].text, "answer": by_id[i].gold} for i in ids)
            spec = replace(spec, few_shot=shots)
        return build_messages(spec, text)


def variant_spec(spec: TaskSpec, prompt: str | None) -> TaskSpec:
    """The task spec under prompt variant ``prompt`` (None: the task's own prompt), with
    ``{label_descriptions}`` filled in."""
    from slmbench.tasks.prompts import fill

    out = spec
    if prompt is not None:
        from dataclasses import fields

        from slmbench.tasks.spec import parse_task

        # the fields the variant's prompt keys change, set on the loaded spec (which keeps
        # what loading filled in: labels from the train split...)
        data = {k: v for k, v in spec.raw.items() if k != "prompts"}
        plain = parse_task(data, spec.path)
        variant = parse_task({**data, "prompt": spec.prompts[prompt]}, spec.path)
        changed = {f.name: getattr(variant, f.name) for f in fields(variant)
                   if f.compare and getattr(variant, f.name) != getattr(plain, f.name)}
        out = replace(spec, **changed)
    if "{label_descriptions}" in out.instruction:
        out = replace(out, instruction=fill(out.instruction,
                                            {"label_descriptions": described_labels(out)}))
    return out


def described_labels(spec: TaskSpec) -> str:
    """One line per label, with its description where the task gives one."""
    descriptions = spec.label_descriptions or {}
    return "\n".join(f"- {lab}: {descriptions[lab]}" if descriptions.get(lab) else f"- {lab}"
                     for lab in (spec.labels or ()))
