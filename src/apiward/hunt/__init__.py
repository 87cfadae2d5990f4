"""apiward hunt stage."""
