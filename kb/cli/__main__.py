"""`python -m kb.cli ...` runs the command line."""

from kb.cli import main

if __name__ == "__main__":  # importing the module (a package walk) must not run the CLI
    main()
