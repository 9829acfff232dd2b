"""The reference workflow's files (``.bin``, ``.info``, results) and its offline route."""
