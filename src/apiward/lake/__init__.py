"""apiward lake stage."""
