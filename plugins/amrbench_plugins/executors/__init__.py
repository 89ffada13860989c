"""Built-in amrbench executors plugins (one file per plugin)."""
