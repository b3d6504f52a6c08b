"""Evaluation of a tuned model (issue: evaluation); nothing here yet."""
