"""benchmarks/throughput.py runs without mteb, datasets, pyarrow and polars (what the GPU box for
measurements has), on synthetic inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "throughput.py"
BLOCKED = ("mteb", "datasets", "pyarrow", "polars")


@pytest.mark.slow
def test_synthetic_cpu_benchmark_runs_with_mteb_and_its_data_stack_blocked(tmp_path):
    args = ["--device", "cpu", "--synthetic", "--queries", "8", "--docs", "12"]
    args += ["--max-length", "128", "--skip-official-all"]
    code = (
        "import runpy, sys\n"
        f"for name in {BLOCKED!r}:\n"
        "    sys.modules[name] = None  # any import of it fails\n"
        f"sys.argv = [{str(SCRIPT)!r}, *{args!r}]\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "# without mteb (--synthetic): synthetic inputs only, no (b)" in out
    assert "## retrieval: 20 texts" in out and "## demo" not in out
    for row in ("(c) harness, 1 device", "(d) harness, 2 devices, warm", "(a) official, 1 device"):
        assert row in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["speedup_vs_mteb"] is None and summary["speedup_vs_official"] > 0
    assert 0.5 < summary["padding_efficiency"] <= 1.0


def _load_script(monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("throughput_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "throughput_script", module)  # its dataclasses need it
    spec.loader.exec_module(module)
    return module


def test_cuda_times_packing_only_where_this_torch_has_the_kernel(monkeypatch):
    from qzhou_eval.models import packing
    from qzhou_eval.models.packing import VarlenKernel

    script = _load_script(monkeypatch)
    monkeypatch.setattr(packing, "varlen_kernel", lambda: VarlenKernel(None))
    timed, why = script.packing_plan(cuda=True, asked=False)
    assert not timed and "no usable varlen_attn" in why
    kernel = VarlenKernel(lambda *a, **k: None, gqa_flag=True, window=True, scale=True)
    monkeypatch.setattr(packing, "varlen_kernel", lambda: kernel)
    timed, why = script.packing_plan(cuda=True, asked=False)
    assert timed and "torch >= 2.13" in why
    assert script.packing_plan(cuda=False, asked=False)[0] is False
