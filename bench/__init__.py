"""Side-by-side benchmarks of the prediction service; not run in CI."""
