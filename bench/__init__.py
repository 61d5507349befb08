"""Side-by-side benchmarks of the prediction service (issue 6); not run in CI."""
