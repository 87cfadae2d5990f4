"""apiward sim stage."""
