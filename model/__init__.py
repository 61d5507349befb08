"""ML layer: BAAC data, features, training, model card and serving backends (no HTTP here)."""
