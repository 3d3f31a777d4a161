"""The bundled INR-classification benchmark and representation study (``--help``)."""
