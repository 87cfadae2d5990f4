"""apiward discover stage."""
