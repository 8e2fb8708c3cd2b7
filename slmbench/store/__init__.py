"""Store: result rows, summaries and manifests in ``results/<run-id>/``.

Reading and writing only: the figures in a summary are computed in :mod:`slmbench.analysis`,
so that the file format can be read (by a merge, a report, a later slmbench) without loading
the code that scores rows.
"""

from slmbench.store.files import atomic_write_json, iter_jsonl
from slmbench.store.run_dir import RunDir, open_run, row_key

__all__ = ["RunDir", "atomic_write_json", "iter_jsonl", "open_run", "row_key"]
