"""Run semhash from a checkout without installing it: `python cli.py ARGS` is `semhash ARGS`."""

from semhash.cli import main

if __name__ == "__main__":
    main()
