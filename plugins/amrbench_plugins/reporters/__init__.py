"""Built-in amrbench reporters plugins (one file per plugin)."""
