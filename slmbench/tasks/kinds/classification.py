"""Kind ``classification``: one label per item from a closed label set.

Everything a label kind does by default (:class:`~slmbench.tasks.kinds.base.TaskKind`) is
classification: the gold is the label column, the request carries the labels as its closed
answer set, the answer is matched to a label after normalisation, and the metrics are
scikit-learn's over the label set. Rows fit the columnar summary.
"""

from __future__ import annotations

from slmbench.tasks.kinds.base import TaskKind


class Classification(TaskKind):
    name = "classification"
    default_instruction = (
        "Classify the message into exactly one of these labels:\n{labels}\n"
        "Answer with the label only."
    )
    columnar = True
    trains_classifier = True


KIND = Classification()
