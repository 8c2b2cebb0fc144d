"""``qzhou-eval <command>``: the subcommand table, and a wheel that carries its configs."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from qzhou_eval import cli
from qzhou_eval.config import CONF_DIR
from tests.conftest import REPO
from tests.in_process import qzhou_eval


def _main(*args: str) -> tuple[int, str, list[str]]:
    """Run ``qzhou-eval <args>`` in this process: (exit code, stdout, non-empty stderr lines)."""
    run = qzhou_eval(*args)
    assert "Traceback" not in run.err
    return run.code, run.out, run.err_lines


def test_every_command_is_a_hydra_app():
    assert {"run", "report", "prompts", "mirror"} <= set(cli.COMMANDS)
    for name, command in cli.COMMANDS.items():
        module, _, attribute = command.app.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_every_entry_point_starts_without_the_heavy_libraries():
    """What runs before a command handles Ctrl-C and SIGTERM (its module, and for ``python -m``
    the packages above it) imports none of mteb, datasets, torch: those take seconds, in which a
    Ctrl-C printed a traceback and a SIGTERM ended the command with no line."""
    modules = [c.app.partition(":")[0] for c in cli.COMMANDS.values()]
    modules += ["qzhou_eval.__main__", "qzhou_eval.cli", "run_mteb", "run_cmteb"]
    heavy = ["mteb", "datasets", "torch", "transformers", "huggingface_hub"]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps([h for h in {heavy!r} if h in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_usage_and_unknown_command():
    code, out, err = _main("--help")
    assert code == 0 and err == [] and all(name in out for name in cli.COMMANDS)
    assert f"config files: {CONF_DIR}" in out  # the folder in use, a wheel's copy included
    assert "conf/" not in out.replace(str(CONF_DIR), "")
    code, out, err = _main()
    assert code == 2 and out == "" and err[0].startswith("usage: qzhou-eval <command>")
    assert err[-1] == f"error: name a command, one of {list(cli.COMMANDS)}"
    code, out, err = _main("nosuch")
    assert code == 2
    assert err == [f"error: unknown command 'nosuch'; use one of {list(cli.COMMANDS)}"]
    code, out, err = _main("--hydra-help")  # a command's flag
    assert code == 2 and err == [
        f"error: unknown command '--hydra-help'; use one of {list(cli.COMMANDS)} (a flag goes "
        "after the command: qzhou-eval run --hydra-help)"
    ]


def test_version():
    from importlib import metadata

    python = ".".join(map(str, sys.version_info[:3]))
    for args in (
        ["--version"],
        ["run", "--version"],
        ["run", "model=minilm", "--ver"],
    ):  # not Hydra's
        code, out, err = _main(*args)
        assert (code, err) == (0, [])
        assert out == (
            f"qzhou-eval {metadata.version('qzhou-eval')} (mteb {metadata.version('mteb')}, "
            f"Python {python})\n"
        )


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        (
            "run",
            [
                "model.path=",
                "benchmark=",
                "runtime.devices=",
                "runtime.encode=",
                "runtime.overwrite=",
            ],
        ),
        ("report", ["results_dir="]),
        ("check", ["check.random_weights=", "check.only=", "runtime.devices="]),
    ],
)
def test_command_help_is_a_short_usage_not_the_whole_config(command, keys):
    code, out, err = _main(command, "--help")
    assert code == 0 and err == []
    lines = out.splitlines()
    assert lines[0] == f"usage: qzhou-eval {command} [-m] [key=value ...]"
    assert len(lines) < 40  # Hydra's default printed every key: 500 lines
    assert all(key in out for key in keys)
    assert "n_parameters" not in out  # a key of the full config
    assert f"qzhou-eval {command} --cfg job" in out and str(CONF_DIR) in out
    groups = lines[lines.index("Config groups (group=option picks a whole file):") + 1 :]
    groups = groups[: groups.index("")]
    every = ["benchmark", "data", "model", "prompts", "runtime"]
    assert [g.split(":")[0] for g in groups] == (["benchmark"] if command == "report" else every)
    for line in groups:  # each one the command composes
        group, options = line.split(": ")
        code, _, err = _main(command, f"{group}={options.split(', ')[-1]}", "--cfg", "job")
        assert code == 0, (line, err)


def test_hydra_help_and_abbreviated_flags_with_overrides():
    # Hydra applied the overrides to its help's config, where no group is: "Could not override"
    for flag in ("--hydra-help", "--hydra-h"):
        code, out, err = _main("run", flag, "model=minilm", "mrl.dim=128")
        assert code == 0 and err == [] and "== Flags ==" in out, (flag, err)
    code, out, err = _main("run", "--he", "model=minilm")  # argparse takes a prefix
    assert code == 0 and err == [] and out.startswith("usage: qzhou-eval run [-m]")


def test_flags_after_the_overrides_are_taken_as_before_them():
    # argparse takes no option after an override: "unrecognized arguments: model=minilm"
    code, out, err = _main("run", "model=minilm", "--help")
    assert code == 0 and err == [] and out.startswith("usage: qzhou-eval run [-m]")
    code, out, err = _main("run", "model=minilm", "--cfg", "job", "mrl.dim=128")
    assert code == 0 and err == [] and "dim: 128" in out and "key: minilm" in out
    code, out, err = _main("run", "model=minilm", "--info")  # its value is optional
    assert code == 0 and err == []  # (Hydra's info goes to its log; not the override's value)
    code, out, err = _main("run", "model=minilm", "--cfg")  # a value missing: said as such
    assert code == 2 and err == [
        "error: --cfg: give job (every key of the command's config), hydra or all"
    ]


def test_help_of_a_module_run_with_python_m_names_that_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "qzhou_eval.report", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "usage: python -m qzhou_eval.report [-m] [key=value ...]"
    assert "python -m qzhou_eval.report --cfg job" in proc.stdout


def test_shards_is_a_command():
    code, out, _ = _main("shards", "benchmark=demo_eng", "benchmark.num_shards=2")
    assert code == 0 and out.startswith("demo_eng: 5 task(s) in 2 shard(s)")
    # a key no setting reads: the hint names this command's --cfg job (it said run's)
    for command in ("shards", "prompts"):
        code, _, err = _main(command, "benchmark=demo_eng", "results_dir=x")
        assert code == 2 and err == [
            "error: results_dir is not a key of this command's config, so no setting reads it; "
            f"did you mean runtime.results_dir? (qzhou-eval {command} --cfg job lists every key)"
        ]


def test_prompts_command():
    code, out, err = _main("prompts", "model=qzhou_embedding", "benchmark=demo_eng")
    assert code == 0 and err[0].startswith("numerics: official")
    rows = [json.loads(line) for line in out.splitlines()]
    sts = [r for r in rows if r["task"] == "DemoEngSTS"]
    assert sts == [
        {
            "task": "DemoEngSTS",
            "side": "none",
            "input": "Instruct: Retrieve semantically similar text\nQuery: TEXT",
        }
    ]


def test_run_command_takes_any_benchmark_and_fails_in_one_line(tmp_path):
    results = tmp_path / "r"
    for bench, needle in (("cmteb", "NoSuchTask"), ("demo_zho", "NoSuchTask")):
        code, _, err = _main(
            "run",
            "model=minilm",
            f"benchmark={bench}",
            "benchmark.tasks=[NoSuchTask]",
            f"runtime.results_dir={results}",
        )
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0]
    code, _, err = _main("run", "model.pooling=average")
    assert code == 2 and err == [
        "error: model.pooling='average' is unknown; use one of ['mean', 'last_token', 'cls', "
        "'weighted_mean', 'max', 'mean_sqrt_len']"
    ]
    assert not results.exists()


def _copy_source(to: Path) -> Path:
    """What a source checkout hands to the build: no build/ or egg-info leftovers of this one."""
    to.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(REPO / name, to / name)
    for folder in ("conf", "qzhou_eval"):
        shutil.copytree(REPO / folder, to / folder, ignore=ignore)
    return to


@pytest.mark.slow
def test_wheel_carries_its_configs_and_runs_every_command(tmp_path):
    """``pip wheel .``, install it (--target: the editable install cannot shadow it), then from an
    empty folder: run (its config is the one prompts, mirror and shards compose too), report and
    mirror read the configs inside the installed package."""
    source = _copy_source(tmp_path / "src")
    conf_files = sorted(p.relative_to(CONF_DIR).as_posix() for p in CONF_DIR.rglob("*.yaml"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # --no-build-isolation: build with this environment's setuptools (the test extra), offline
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", tmp_path / "whl"],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "whl").glob("qzhou_eval-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", target, wheel], check=True, capture_output=True
    )
    packaged = sorted(
        p.relative_to(target / "qzhou_eval" / "conf").as_posix()
        for p in (target / "qzhou_eval" / "conf").rglob("*.yaml")
    )
    assert packaged == conf_files

    cwd = tmp_path / "empty"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
        )

    where = run(
        sys.executable, "-c", "import qzhou_eval.config as c, qzhou_eval; print(c.CONF_DIR)"
    )
    assert Path(where.stdout.strip()) == target / "qzhou_eval" / "conf", where.stderr
    script = str(target / "bin" / "qzhou-eval")

    args = ("model=minilm", "benchmark=demo_eng", "benchmark.tasks=[DemoEngSTS]")
    evaluated = run(script, "run", *args, "runtime.progress=false")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "DemoEngSTS" in evaluated.stdout and "Mean(TaskType)" in evaluated.stdout
    # the config's relative folders, in the folder the command was started from, and nothing else
    assert sorted(p.name for p in cwd.iterdir()) == ["embeddings", "results"]
    assert list(cwd.glob("results/*/*/DemoEngSTS.json"))

    report = run(script, "report", "results_dir=results", "benchmark=demo_eng", "out_dir=false")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "all-MiniLM-L6-v2" in report.stdout

    helped = run(script, "--help")
    assert f"config files: {target / 'qzhou_eval' / 'conf'}" in helped.stdout

    mirror = run(script, "mirror", "benchmark=cmteb")
    assert mirror.returncode == 2
    assert mirror.stderr.strip() == "error: set data.mirror=<folder> (the mirror to fill)"


@pytest.mark.slow
def test_sdist_carries_the_configs(tmp_path):
    source = _copy_source(tmp_path / "src")
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from setuptools import build_meta; build_meta.build_sdist({str(tmp_path)!r})",
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("qzhou_eval-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"setup.py", "conf/mteb.yaml", "conf/hydra/default.yaml"} <= names
    assert {f"conf/{p.relative_to(CONF_DIR).as_posix()}" for p in CONF_DIR.rglob("*.yaml")} <= names


def test_a_script_run_from_another_folder_is_named_by_the_path_typed(tmp_path):
    # (it said 'python run_mteb.py --cfg job', which names no file in that folder)
    script = str(REPO / "run_mteb.py")
    proc = subprocess.run(
        [sys.executable, script, "model=minilm", "results_dir=x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1].endswith(
        f"(python {script} --cfg job lists every key)"
    )
    shown = subprocess.run(
        [sys.executable, script, "--cfg", "job"], capture_output=True, text=True, cwd=tmp_path
    )
    assert shown.returncode == 0 and "model:" in shown.stdout
    # a path with a space: quoted as a shell takes it, and --help still composes
    spaced = tmp_path / "my scripts" / "run_mteb.py"
    spaced.parent.mkdir()
    shutil.copy(script, spaced)
    helped = subprocess.run(
        [sys.executable, str(spaced), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith(f"usage: python '{spaced}' [-m]")
