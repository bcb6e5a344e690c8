"""Memory of herd-serve's app servers on loopback: per-worker PSS with and without --preload, and
a leaking app's growth with and without --max-requests (`make bench-memory`)."""
