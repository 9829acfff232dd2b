"""Evaluation: the run (resume, lock, results file, summary), metrics and the report."""
