"""Store: result rows, summaries and manifests in ``results/<run-id>/``."""

from slmbench.store.files import atomic_write_json, iter_jsonl
from slmbench.store.run_dir import RunDir, open_run, row_key

__all__ = ["RunDir", "atomic_write_json", "iter_jsonl", "open_run", "row_key"]
