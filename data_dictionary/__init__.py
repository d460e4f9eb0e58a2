"""CPA codes to activity classes, annotation parsing, window labels and splits (shipped as package data)."""
