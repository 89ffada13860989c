"""Built-in amrbench compressors plugins (one file per plugin)."""
