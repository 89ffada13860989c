"""Built-in amrbench protocols plugins (one file per plugin)."""
