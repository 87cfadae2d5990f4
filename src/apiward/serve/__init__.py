"""apiward serve stage."""
