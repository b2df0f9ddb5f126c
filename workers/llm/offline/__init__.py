"""Offline backends: answer from data instead of a model, for the embedded default and for teams that
already hold teacher data. Each is an honest algorithm over the dataset the endpoint names:

- replay: the recorded answer (or rationale, or task category) of the same instruction;
- similarity judge: scores two answers by embedding similarity to the recorded reference answer;
- retrieval generator: the unseen reserve instruction nearest to the seed that passes the novelty filter.

They take the same requests as the API and answer in the same reply contracts, so the rest of Retort
cannot tell them apart, except that the UI labels them "offline".
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """What the offline dataset records for one instruction."""

    output: str = ""
    label: str = ""
    task_category: str = ""
