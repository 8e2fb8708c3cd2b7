"""Deterministic sharding: ``--shard K/N`` keeps the items whose stable id hash falls in bucket K.

The bucket depends on the item id only (sha256), so shards are disjoint, cover everything and
do not change when the dataset is reordered — any job array (Slurm, Kubernetes indexed Jobs, a
CI matrix) can run them and ``slmbench merge`` puts them back together.
"""

from __future__ import annotations

import hashlib

from slmbench.errors import InputError


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        k_text, n_text = str(value).split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise InputError("must look like K/N, e.g. 3/8", field="--shard", value=value) from None
    if n < 1 or not 1 <= k <= n:
        raise InputError("needs 1 <= K <= N", field="--shard", value=value)
    return k, n


def shard_of(item_id: str, n: int) -> int:
    """The 1-based shard an item belongs to among ``n``."""
    digest = hashlib.sha256(str(item_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1
