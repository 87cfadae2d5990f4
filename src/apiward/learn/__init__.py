"""apiward learn stage."""
