"""Performance benchmarks of the pipeline (`make bench`)."""
