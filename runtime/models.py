"""Models of runtime."""
