"""Measuring answer quality: evaluation sets, ranking metrics, configuration comparisons and reports.

Kept apart from the pipeline it measures (like sentence-transformers' `evaluation/`)."""
