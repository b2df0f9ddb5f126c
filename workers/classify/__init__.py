"""The task classifier: sentence embeddings plus a logistic-regression head, with a confidence per label.

It lives outside workers.algorithms because it loads torch (through sentence-transformers) and
scikit-learn; the resampling rule it feeds stays pure in workers.algorithms.resampling.
"""
