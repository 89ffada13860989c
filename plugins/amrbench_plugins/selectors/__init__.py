"""Built-in amrbench selectors plugins (one file per plugin)."""
