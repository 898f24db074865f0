"""`python -m kb.cli ...` runs the command line."""

from kb.cli import main

main()
