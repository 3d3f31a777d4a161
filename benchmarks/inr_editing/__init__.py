"""INR editing: ``python -m benchmarks.inr_editing`` (see ``--help``)."""
