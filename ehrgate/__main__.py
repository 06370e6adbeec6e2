"""`python -m ehrgate` is the `ehrgate` command."""

from ehrgate.cli import main

main()
