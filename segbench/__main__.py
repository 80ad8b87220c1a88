"""`python -m segbench` runs the CLI."""

from segbench.cli import main

main()
