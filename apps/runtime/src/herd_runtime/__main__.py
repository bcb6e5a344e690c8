"""`python -m herd_runtime ...` is `herd-serve ...`: how an injected runtime starts, since
the app image has no herd-serve script (spec.runtime: inject)."""

from herd_runtime.serve import main

main()
