"""The benchmarks: speed (``bench/*.py``) and the science benchmark (``python -m bench.science``)."""
