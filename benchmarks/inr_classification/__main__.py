"""``python -m benchmarks.inr_classification``: see ``--help``."""

from .cli import main

main()
