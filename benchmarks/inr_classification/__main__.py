"""``python -m benchmarks.inr_classification``: see ``--help``."""

import sys

from .cli import main

sys.stdout.reconfigure(errors="backslashreplace")  # a --out that is not UTF-8 prints escaped
main()
