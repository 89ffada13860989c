"""Built-in amrbench explainers plugins (one file per plugin)."""
