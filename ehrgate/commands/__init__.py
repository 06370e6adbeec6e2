"""One module per group of `ehrgate` commands; `ehrgate.cli` assembles them."""
