"""Built-in amrbench condensers plugins (one file per plugin)."""
