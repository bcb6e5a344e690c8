"""Local-cluster, operator, Prometheus, load and app-server harness shared by tests/ and bench/."""
