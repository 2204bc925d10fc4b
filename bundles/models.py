"""Models of bundles."""
