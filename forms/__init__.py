"""Filing: form catalogue, validators, tax engine, drafts, submissions, review, progress."""
