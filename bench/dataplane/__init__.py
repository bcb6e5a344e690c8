"""bench/dataplane: requests/s and latency of gunicorn's defaults, Herd's auto-tuned
configurations and a grid of worker classes × workers × threads, for the sample apps under each
workload class, with wrk on loopback. Run `.venv/bin/python -m bench.dataplane --help`;
docs/benchmarks.md holds the numbers and what they say about operator/herd/serving/tuning.py."""
