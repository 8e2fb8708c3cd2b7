"""Counting tokens when a provider does not report usage.

tiktoken cannot download its encodings here (or on many CI machines), but litellm ships the
cl100k/o200k files; we point tiktoken at them without importing litellm (which is slow).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path


@functools.lru_cache(maxsize=4)
def _encoding(name: str):  # noqa: ANN202 - tiktoken.Encoding, imported lazily
    spec = importlib.util.find_spec("litellm")
    if spec and spec.submodule_search_locations and "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = Path(spec.submodule_search_locations[0]) / "litellm_core_utils" / "tokenizers"
        if bundled.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    import tiktoken

    return tiktoken.get_encoding(name)


def count_tiktoken(text: str, encoding: str = "o200k_base") -> int:
    return len(_encoding(encoding).encode(text, disallowed_special=()))


def count_messages(messages: list[dict[str, str]], encoding: str = "o200k_base") -> int:
    """OpenAI's chat accounting: content tokens + 3 per message + 3 for the reply primer."""
    return sum(count_tiktoken(m.get("content") or "", encoding) + 3 for m in messages) + 3
