"""apiward alert stage."""
