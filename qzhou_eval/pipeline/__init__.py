"""Pipelined runs: the devices encode the next tasks while CPU processes score the finished ones.

- :mod:`.lookahead`: the model inputs a loaded task will ask for, before mteb asks;
- :mod:`.order`: which task the devices encode first (the longest scoring tail);
- :mod:`.scoring_pool`: the processes that score (task, sweep point) jobs from the store
  (:mod:`.scoring_process`: what runs inside one);
- :mod:`.handoff`: how those processes wait for inputs the devices are still encoding;
- :mod:`.schedule`: the main process's loop that ties both together.

Importing the package imports none of them: a command starts the scoring processes' fork server
(:func:`.scoring_pool.start_server`) before its own heavy imports.
"""
