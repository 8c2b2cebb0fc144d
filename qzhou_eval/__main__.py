"""``python -m qzhou_eval <command> ...``: the same as the ``qzhou-eval`` console script."""

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

from qzhou_eval.cli import main

if __name__ == "__main__":
    main()
