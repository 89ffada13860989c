"""amrbench: a plugin-based benchmark harness for Automatic Modulation Recognition."""
__version__ = "0.1.0"
