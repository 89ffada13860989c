"""An example plugin family, `augment`: a protocol, its own method kind (`augmenter`), one
method, a shared resource and a subcommand, registered only through entry points."""
