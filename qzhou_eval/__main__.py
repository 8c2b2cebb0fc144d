"""``python -m qzhou_eval <command> ...``: the same as the ``qzhou-eval`` console script."""

from qzhou_eval.cli import main

if __name__ == "__main__":
    main()
