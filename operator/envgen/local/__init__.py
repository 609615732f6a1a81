"""Local mode: a run directory and training tasks as local processes (``envgen run run.yaml``)."""
