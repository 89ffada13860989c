"""Built-in amrbench models plugins (one file per plugin)."""
