"""A tiny numpy training loop whose terminal output exercises what trainlog captures."""
