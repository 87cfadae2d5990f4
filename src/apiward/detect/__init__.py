"""apiward detect stage."""
