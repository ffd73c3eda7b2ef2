"""Measuring answer quality: evaluation sets, ranking metrics, configuration comparisons and reports.

Kept apart from the answering it measures: it replays questions through retrieval and the reranker."""
