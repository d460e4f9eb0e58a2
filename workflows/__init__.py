"""Command line and end-to-end jobs that join capture_pipeline (features) and models (torch)."""
