"""Exports: a dataset, a filtered selection of one, or a round's frozen training set, written as Alpaca,
ShareGPT, OpenAI chat JSONL or parquet (or all of them in one zip), with a manifest and a dataset card.

Here rather than in apps.datasets because a round's training set is the experiments app's: the import
layers let experiments read datasets, never the reverse. The writers themselves are pure and live in
apps.datasets.formats.writers.
"""
