"""What a run command does before its heavy imports: the scoring processes' fork server starts
then, only when the run will score in processes."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

# In a process of its own: the test must start without a fork server, and stopping the session's
# (to start one of its own) would make the next pipelined test start another, importing again.
LAUNCH = """
import os, sys
from qzhou_eval.config import compose_config
from qzhou_eval.pipeline import scoring_pool
from qzhou_eval.runs.launch import prepare
from tests.processes import alive, fork_servers

os.environ.pop("TOKENIZERS_PARALLELISM", None)
runtime = lambda *o: compose_config("mteb", [f"runtime.store_dir={sys.argv[1]}", *o])
prepare(runtime("runtime.scoring_workers=0"))
assert not fork_servers(os.getpid())
assert os.environ["TOKENIZERS_PARALLELISM"] == "true"  # before the server: one of its variables
prepare(runtime("runtime.scoring_workers=one"))  # the plan names the bad value
assert not fork_servers(os.getpid())
prepare(runtime("runtime.scoring_workers=2"))
(server,) = fork_servers(os.getpid())
assert alive(server)
assert scoring_pool.start_method() == "forkserver"  # the run's pool will fork from it
print("ok")
"""


def test_the_fork_server_starts_before_the_run_when_processes_will_score(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.split() == ["ok"], done.stderr[-3000:]
