"""Built-in amrbench datasets plugins (one file per plugin)."""
