"""Open-model load generator for the accident API (`python load/run.py --help`)."""
