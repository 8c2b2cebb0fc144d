"""What stops a command reaches the user as one line with its exit code, never a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qzhou_eval.config import CONF_DIR, app, compose_config, hydra_app
from qzhou_eval.config.folders import check_writable_folder
from qzhou_eval.errors import ConfigError, WriteError
from tests.processes import alive


@pytest.fixture(autouse=True)
def _in_a_fresh_folder(tmp_path, monkeypatch) -> None:
    """A sweep writes Hydra's ``multirun.yaml`` below the working folder before its first job
    fails; keep that out of the checkout (and apart from the files the tests name)."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def _run(monkeypatch, capsys, fn, *args: str) -> tuple[int, list[str]]:
    """Run ``fn`` as a command-line app with ``args``; (exit code, non-empty stderr lines)."""
    monkeypatch.setattr(sys, "argv", ["app", *args])
    capsys.readouterr()
    try:
        hydra_app("mteb")(fn)()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [ln for ln in err.splitlines() if ln.strip()]


@pytest.fixture
def broken_conf(tmp_path, monkeypatch) -> Path:
    """A copy of conf/ with a YAML syntax error on line 3 of conf/model/broken.yaml."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "model" / "broken.yaml").write_text("name: x\npooling: mean\n  dtype: [bfloat16\n")
    monkeypatch.setattr(app, "CONF_DIR", conf)
    return conf / "model" / "broken.yaml"


def test_yaml_syntax_error_is_file_line_problem(broken_conf, monkeypatch, capsys):
    with pytest.raises(ConfigError) as info:
        compose_config("mteb", ["model=broken"])
    assert str(info.value) == f"{broken_conf}:3: mapping values are not allowed here"
    for args, job in ((["model=broken"], ""), (["-m", "model=broken,minilm"], "model=broken")):
        code, lines = _run(monkeypatch, capsys, lambda cfg: None, *args)
        assert code == 2
        sweep = f"the sweep's job {job}: " if job else ""  # a sweep value: its job is named
        assert lines == [f"error: {sweep}{broken_conf}:3: mapping values are not allowed here"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model=nosuch", "error: model=nosuch is unknown; use one of ['hf_auto', 'minilm', "),
        ("benchmark=nosuch", "error: benchmark=nosuch is unknown; use one of ['cmteb', "),
        ("prompts=nosuch", "error: prompts=nosuch is unknown; use one of ['hf_auto', "),
    ],
)
def test_unknown_config_name_lists_the_options_without_hydras_search_path(
    monkeypatch, capsys, override, expected
):
    for args in ([override], ["-m", f"{override},x"]):
        code, lines = _run(monkeypatch, capsys, lambda cfg: None, *args)
        assert code == 2 and len(lines) == 1, lines
        if len(args) == 2:  # the job of that sweep value is named
            expected = expected.replace("error: ", f"error: the sweep's job {override}: ")
        assert lines[0].startswith(expected) and "search path" not in lines[0].lower()


def test_a_sweep_is_checked_job_by_job_before_any_job_is_launched(monkeypatch, capsys):
    # On a cluster each job would be queued only to fail, its reason in its own log file.
    from hydra.core.hydra_config import HydraConfig

    # as in a new process: no job's Hydra config yet (an app run in this process leaves its own)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    ran = []
    Path("afile").write_text("x")
    for args, expected in (
        (["mrl.dims=[256,512]"], "error: mrl dimension 512 exceeds model.embed_dim=384"),
        (  # no file where a job's folders go (each job would stop on it, one line each)
            ["runtime.store_dir=afile", "mrl.dim=128,256"],
            "error: the sweep's job mrl.dim=128: runtime.store_dir=afile is a file, not a folder",
        ),
        (
            ["runtime.results_dir=afile/res", "mrl.dim=128,256"],
            "error: the sweep's job mrl.dim=128: runtime.results_dir=afile/res: a file is in the "
            "way of this folder (afile)",
        ),
        (  # the folder Hydra makes before any job (Hydra's traceback, were it not checked)
            ["hydra.sweep.dir=afile/sweep", "mrl.dim=128,256"],
            "error: hydra.sweep.dir=afile/sweep: a file is in the way of this folder (afile); "
            "point hydra.sweep.dir at a folder (where the sweep keeps its job folders",
        ),
        (
            ["mrl.dim=128,512", "benchmark.shard=0,1", "benchmark.num_shards=2"],
            "error: the sweep's job mrl.dim=512 benchmark.shard=0: mrl dimension 512 exceeds "
            "model.embed_dim=384",
        ),
        (["mrl.dim=128,x"], "error: the sweep's job mrl.dim=x: mrl.dim='x' must be a positive"),
        (
            # without the output size (hf_auto leaves it unset) no cut can be checked
            ["model.embed_dim=null", "mrl.dims=[32,128]"],
            "error: mrl.dims=[32, 128] needs the model's output size: set model.embed_dim=",
        ),
        (  # (the report's quality per byte, without it, left its table out without a word)
            ["model.embed_dim=null", "mrl.precisions=[float32,int8]"],
            "error: mrl.precisions=['float32', 'int8'] needs the model's output size, which the "
            "report's quality per byte counts bytes by: set model.embed_dim=",
        ),
        (
            ["benchmark.num_shards=2", "benchmark.shard=0,5"],
            "error: the sweep's job benchmark.shard=5: benchmark.shard=5 is not a shard of ",
        ),
        (
            ["benchmark=demo_eng", "benchmark.tasks=[DemoEngSTS],[Nope]"],
            "error: the sweep's job benchmark.tasks=[Nope]: ",
        ),
        (["runtime.scoring_workers=0,-1"], "error: the sweep's job runtime.scoring_workers=-1: "),
        (["runtime.lookahead=all,-3"], "error: the sweep's job runtime.lookahead=-3: "),
        (["runtime.encode=true,maybe"], "error: the sweep's job runtime.encode=maybe: "),
        (  # (the job named as Hydra renders its value)
            ["experiment=a,true"],
            "error: the sweep's job experiment=True: experiment=true: give a name for the ",
        ),
        (  # (hf_auto, key null: every setting in one folder; job 2 stopped after loading)
            ["model=hf_auto", "model.name=org/m", "model.max_length=64,128"],
            "error: the sweep's jobs model.max_length=64 and model.max_length=128 file different "
            "settings (max_length) of org/m into one results folder (a model file without an "
            "official configuration, key: null, files them alike): give each job its own "
            "experiment, e.g. 'experiment=max_length_${model.max_length}'",
        ),
        (  # mteb would file a/b as a_b: two experiments in one folder
            ["experiment=a_b,a/b"],
            "error: the sweep's job experiment=a/b: experiment='a/b': it names a folder, and / "
            "cannot be in a folder's name; e.g. experiment='a_b'",
        ),
        (  # mteb's folder experiment_x__output_dtypes_binary: read as binary precision
            ["experiment=x,x__output_dtypes_binary"],
            "error: the sweep's job experiment=x__output_dtypes_binary: "
            "experiment='x__output_dtypes_binary': its part 'output_dtypes_binary' after '__' is "
            "how mteb names the folder of an output precision, and would be read as one; e.g. "
            "experiment='x_output_dtypes_binary'",
        ),
        (  # the settings are checked before Hydra runs any job: no HydraConfig yet
            ["experiment=job${hydra:job.num}", "mrl.dim=64,128"],
            "error: a ${hydra:...} value (as in 'experiment=job${hydra:job.num}') is known only "
            "once Hydra runs a job",
        ),
        (
            ["experiment=q__embed_dim_32"],
            "error: experiment='q__embed_dim_32': its part 'embed_dim_32' after '__' is how mteb "
            "names the folder of an output size",
        ),
    ):
        code, lines = _run(monkeypatch, capsys, ran.append, "-m", "model=minilm", *args)
        assert code == 2 and len(lines) == 1 and lines[0].startswith(expected), lines
    assert not ran  # no job was launched
    assert sorted(os.listdir()) == ["afile"]  # and no folder made for one
    assert _run(monkeypatch, capsys, ran.append, "-m", "model=minilm", "mrl.dim=128,384") == (0, [])
    assert [cfg.mrl.dim for cfg in ran] == [128, 384]
    # with the folder's own settings unchecked, each setting is a variant folder of its own
    ignore = ["model=hf_auto", "model.name=org/m", "model.folder_settings=ignore"]
    assert _run(monkeypatch, capsys, ran.append, "-m", *ignore, "model.max_length=64,128") == (
        0,
        [],
    )
    assert [cfg.model.max_length for cfg in ran[2:]] == [64, 128]
    ran.clear()
    # each job in its own experiment; a named model's other settings are a variant of their own
    for args in (
        [
            "model=hf_auto",
            "model.name=org/m",
            "model.max_length=64,128",
            "experiment=m${model.max_length}",
        ],
        ["model=minilm", "model.max_length=64,128"],
    ):
        assert _run(monkeypatch, capsys, ran.append, "-m", *args) == (0, [])
    assert len(ran) == 4
    ran.clear()
    # only the jobs are checked: the config without the sweep (1 shard) is none of them
    code, lines = _run(
        monkeypatch, capsys, ran.append, "-m", "benchmark.num_shards=2,4", "benchmark.shard=3"
    )
    assert code == 2 and lines == [
        "error: the sweep's job benchmark.num_shards=2: benchmark.shard=3 is not a shard of "
        "benchmark.num_shards=2; use 0 to 1"
    ]
    assert not ran
    # an abbreviated --multirun (argparse takes any unambiguous prefix) is checked alike
    code, lines = _run(
        monkeypatch, capsys, ran.append, "--multi", "benchmark.num_shards=2,4", "benchmark.shard=3"
    )
    assert code == 2 and lines[0].startswith("error: the sweep's job benchmark.num_shards=2:")
    assert not ran
    # a glob needs Hydra's config loader to expand: its jobs check themselves (no traceback)
    assert _run(monkeypatch, capsys, ran.append, "-m", "model=glob(minil*)") == (0, [])
    assert [cfg.model.key for cfg in ran] == ["minilm"]
    ran.clear()
    # the devices are the job's node's: not checked where the sweep is launched
    assert _run(monkeypatch, capsys, ran.append, "-m", "runtime.devices=cpu,cuda:7") == (0, [])
    assert [cfg.runtime.devices for cfg in ran] == ["cpu", "cuda:7"]
    ran.clear()
    # without SLURM, its launcher: one line instead of submitit's traceback
    monkeypatch.setattr("shutil.which", lambda name: None)
    code, lines = _run(monkeypatch, capsys, ran.append, "-m", "hydra/launcher=slurm", "x=1,2")
    assert code == 2 and lines[0].startswith("error: hydra/launcher=slurm submits SLURM jobs,")
    assert not ran
    # without the cluster extra: its launchers name the extra (Hydra would call them unknown)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    for launcher in ("joblib", "slurm"):
        code, lines = _run(monkeypatch, capsys, ran.append, "-m", f"hydra/launcher={launcher}")
        assert code == 2 and lines == [
            f"error: hydra/launcher={launcher} needs Hydra's launcher plugin hydra_plugins.hydra_"
            f"{'joblib' if launcher == 'joblib' else 'submitit'}_launcher, which is not "
            'installed: pip install "qzhou-eval[cluster]"'
        ]
    assert not ran


@pytest.mark.parametrize("launcher", ["hydra/launcher=slurm", "hydra.launcher.n_jobs=2"])
def test_a_launcher_setting_without_a_sweep_is_refused(monkeypatch, capsys, launcher):
    # Hydra ignores it: a run meant for SLURM ran on the login node (or, without the cluster
    # extra, a line calling the launcher unknown and listing none)
    ran = []
    code, lines = _run(monkeypatch, capsys, ran.append, launcher)
    assert (code, ran) == (2, [])
    assert lines == [
        f"error: {launcher} sets the launcher of a sweep, and this command is no sweep: add -m "
        "to sweep, or drop it to run here"
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("-cn", "nonesuch"), "error: Cannot find primary config 'nonesuch'. "),
        (("--resolve",), "error: The --resolve flag can only be used in conjunction with --cfg "),
        # argparse's own line, not after its usage block
        (("-cn",), "error: argument --config-name/-cn: expected one argument"),
        (("--info", "nonsense"), "error: argument --info/-i: invalid choice: 'nonsense' "),
        (("-m=1",), "error: argument --multirun/-m: ignored explicit argument '1'"),
    ],
)
def test_hydras_own_refusals_of_its_flags_are_one_line(monkeypatch, capsys, args, said):
    ran = []
    code, lines = _run(monkeypatch, capsys, ran.append, "model=minilm", *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(said) and not ran, lines


def test_a_launcher_setting_without_its_launcher_names_the_launchers(monkeypatch, capsys):
    # Hydra's advice was to append it (+hydra.launcher.n_jobs=2), where nothing reads it
    ran = []
    code, lines = _run(monkeypatch, capsys, ran.append, "-m", "hydra.launcher.n_jobs=2")
    assert (code, ran) == (2, []) and lines == [
        "error: hydra.launcher.n_jobs is a setting of a launcher this command does not use "
        "(Hydra's basic launcher, which runs the jobs one after another, has none): pick one "
        "with hydra/launcher=joblib, or hydra/launcher=slurm"
    ]
    args = ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobz=2")
    code, lines = _run(monkeypatch, capsys, ran.append, *args)
    assert (code, ran) == (2, []) and lines == [
        "error: hydra.launcher.n_jobz is not a setting of the joblib launcher (--cfg hydra "
        "lists them, under launcher)"
    ]


def test_a_sweep_flag_after_the_overrides_sweeps(monkeypatch, capsys):
    ran = []
    code, lines = _run(monkeypatch, capsys, ran.append, "model=minilm", "-m", "mrl.dim=128,256")
    assert (code, lines) == (0, []) and [cfg.mrl.dim for cfg in ran] == [128, 256]


@pytest.mark.slow
def test_a_killed_joblib_job_is_one_line(tmp_path):
    # joblib then stops the whole sweep with TerminatedWorkerError (its own behaviour). In a
    # process of its own, as a user's command runs: joblib's pool, broken by the kill, stays out
    # of the test session.
    script = tmp_path / "killed.py"
    script.write_text(
        "import os, signal\n"
        "from qzhou_eval.config import hydra_app\n"
        "def killed(cfg):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a kill -9 would\n"
        "if __name__ == '__main__':\n"
        "    hydra_app('mteb')(killed)()\n"
    )
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "runtime.overwrite=true,false",
    ]
    done = subprocess.run(
        [sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True
    )
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: a job's process of the sweep ended abruptly (killed, ")
    assert "SIGKILL" in lines[0] and "rerun the same command to resume" in lines[0]


@pytest.mark.slow
def test_a_joblib_sweep_killed_outright_leaves_no_job_running(tmp_path):
    # kill -9 of the command's process: its joblib jobs, children it cannot stop, would run on
    # to their end (on a cluster node, holding its GPUs), then idle
    script = tmp_path / "sweep.py"
    script.write_text(
        "import os, time\n"
        "from qzhou_eval.config import hydra_app\n"
        "def job(cfg):\n"
        "    open(f'job_{os.getpid()}', 'w').close()\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    hydra_app('mteb')(job)()\n"
    )
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "runtime.overwrite=true,false",
    ]
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(600):
            jobs = [int(p.name[4:]) for p in tmp_path.glob("job_*")]
            if len(jobs) == 2 or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert len(jobs) == 2 and proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for _ in range(50):
            if not any(alive(pid) for pid in jobs):
                break
            time.sleep(0.1)
        assert not any(alive(pid) for pid in jobs), "a job outlived the sweep's command"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_failed_jobs_of_a_sweep_say_their_own_lines_only(monkeypatch, capsys):
    def fn(cfg) -> None:
        if cfg.mrl.dim != 256:
            app._say(f"error: job {cfg.mrl.dim}")
            sys.exit(3)

    code, lines = _run(monkeypatch, capsys, fn, "-m", "model=minilm", "mrl.dim=128,256,384")
    # not Hydra's "Error executing job with overrides: [...]" after them (the first job's only)
    assert (code, lines) == (3, ["error: job 128", "error: job 384"])

    def bug(cfg) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(sys, "argv", ["app", "-m", "model=minilm", "mrl.dim=128"])
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback, and Hydra's line
        hydra_app("mteb")(bug)()
    assert "Error executing job with overrides: " in capsys.readouterr().err


def test_ctrl_c_on_a_joblib_sweep_leaves_no_process_behind(tmp_path):
    # As GNU timeout stops a command: SIGINT to it, then to its process group. joblib's loky
    # backend, aborting, starts fresh worker processes that would idle for 300 s; the second
    # SIGINT, an echo of the first, used to end the command at once, before it could stop them.
    store = tmp_path / "embeddings"
    args = [
        *("run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=minilm"),
        *("benchmark=demo_eng", "benchmark.num_shards=2", "benchmark.shard=0,1"),
        *(f"runtime.results_dir={tmp_path / 'results'}", f"runtime.store_dir={store}"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "qzhou_eval", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for _ in range(600):  # both jobs encode (their store folder is made first)
            if list(store.glob("*/*.npy")) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        os.kill(proc.pid, signal.SIGINT)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 130 and lines, err[-3000:]
    assert set(lines) == {app.INTERRUPTED}, err[-3000:]  # each job's line, and the command's
    for _ in range(50):  # (the workers' last moments)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("a process of the sweep outlived it")


def test_unparsable_override_names_it(monkeypatch, capsys):
    code, lines = _run(monkeypatch, capsys, lambda cfg: None, "model.max_length=[1")
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("error: cannot parse the override 'model.max_length=[1': ")


def test_an_interpolation_no_key_answers_names_the_setting_in_a_run(tmp_path):
    # (OmegaConf's own lines: "... full_key: model.revision object_type=dict")
    from tests.in_process import qzhou_eval

    results = tmp_path / "r"
    run = qzhou_eval(
        "run", "model=minilm", "benchmark=demo_eng", "model.revision=${x}",
        f"runtime.results_dir={results}",
    )  # fmt: skip
    assert (run.code, run.err_lines) == (
        2,
        ["error: model.revision: Interpolation key 'x' not found"],
    )
    assert not results.exists()


def test_a_list_given_to_a_map_names_the_map(monkeypatch, capsys):
    # (Hydra's line alone: "Error merging override prompts.instructions=[a]")
    code, lines = _run(
        monkeypatch, capsys, lambda cfg: None, "model=minilm", "prompts.instructions=[a]"
    )
    assert (code, lines) == (
        2,
        [
            "error: prompts.instructions=[a]: prompts.instructions is a map (key: value), which "
            "a list cannot replace; give a map, e.g. '++prompts.instructions={<key>:\"<text>\"}' "
            "(++ adds keys to it)"
        ],
    )


def test_an_interpolation_no_key_answers_is_one_line(monkeypatch, capsys):
    # (a prompt "cost ${x}" in a prompts file: Hydra's "Error executing job with overrides"
    # came first, then the app's line)
    code, lines = _run(monkeypatch, capsys, lambda cfg: str(cfg.prompts.name), "prompts.name=${x}")
    assert (code, lines) == (2, ["error: prompts.name: Interpolation key 'x' not found"])


@pytest.mark.parametrize("flags", [(), ("-m",)])
def test_unquoted_non_ascii_value_names_the_quoting(monkeypatch, capsys, flags):
    """``prompts +text=今天天气很好`` (no quotes for Hydra): one line showing the quoting."""
    code, lines = _run(monkeypatch, capsys, lambda cfg: None, *flags, "+text=今天天气很好")
    assert (code, lines) == (
        2,
        [
            "error: cannot parse the override '+text=今天天气很好': Hydra's override grammar "
            "takes '今' only inside quotes; quote the value, Hydra's quotes inside the shell's: "
            "'+text=\"今天天气很好\"'"
        ],
    )
    assert _run(monkeypatch, capsys, lambda cfg: None, '+text="今天天气很好"') == (0, [])
    # a brace of the text: Hydra's parser stops at it (a ${...} reference is its grammar)
    code, lines = _run(monkeypatch, capsys, lambda cfg: None, "+text=a{b}")
    assert code == 2 and lines == [
        "error: cannot parse the override '+text=a{b}': mismatched input '{' expecting <EOF>; "
        "quote the value, Hydra's quotes inside the shell's: '+text=\"a{b}\"'"
    ]
    # ... and a value that is braces whole, which Hydra reads as a dict (a raw Hydra line)
    code, lines = _run(monkeypatch, capsys, lambda cfg: None, "+text={foo}")
    assert code == 2 and lines == [
        "error: cannot parse the override '+text={foo}': no viable alternative at input "
        "'{foo}'; quote the value, Hydra's quotes inside the shell's: '+text=\"{foo}\"'"
    ]


UNREAD_KEYS = [
    ("mrl.dimz=128", "; did you mean mrl.dim?"),
    ("+mrl.dimz=128", "; did you mean mrl.dim?"),  # Hydra's advice: nothing would read it
    ("++runtime.scoring_worker=2", "; did you mean runtime.scoring_workers?"),
    ("+zzz=1", ""),
    # model files state every key they read: a typo appended is read by nothing
    ("+model.poolng=mean", "; did you mean model.pooling?"),
    ("+model.token_prepending.enabld=true", "; did you mean model.token_prepending.enabled?"),
    # a mapping the recipe does not have (not a task of the instructions)
    ("+prompts.instrctions.STS12=x", "; did you mean prompts.instructions?"),
]


@pytest.mark.parametrize(
    ("flags", "override", "hint"),
    [((), *case) for case in UNREAD_KEYS]
    # a sweep and --cfg (what a run takes) check alike: a set key and an appended one each
    + [(flags, *UNREAD_KEYS[i]) for flags in [("-m",), ("--cfg", "job")] for i in (0, 2)],
)
def test_a_key_no_setting_reads_is_refused_with_the_nearest_key(
    monkeypatch, capsys, override, hint, flags
):
    ran = []
    code, lines = _run(monkeypatch, capsys, ran.append, *flags, override)
    key = override.lstrip("+").partition("=")[0].removesuffix(".STS12")
    assert (code, ran) == (2, [])
    assert lines == [
        f"error: {key} is not a key of this command's config, so no setting reads it{hint} "
        "(qzhou-eval run --cfg job lists every key)"
    ]


@pytest.mark.parametrize(
    ("override", "said"),
    [
        # a key of a map of the user's own, or one a command reads only where it is added
        (
            "prompts.instructions.STS12=x",
            "prompts.instructions has no STS12 yet: add it with '+prompts.instructions.STS12=x'",
        ),
        (
            "prompts.model_prompts.query=q",
            "prompts.model_prompts has no query yet: add it with '+prompts.model_prompts.query=q'",
        ),
        ("text=hello", "text is read only where it is added: '+text=hello'"),
        (  # quoted to paste as shown: a value in Hydra's quotes inside the shell's other ones
            "prompts.instructions.STS12='a b'",
            "prompts.instructions has no STS12 yet: add it with \"+prompts.instructions.STS12='a "
            "b'\"",
        ),
        # Hydra merges a map given into the map there, and refuses its new keys
        (
            "prompts.instructions={STS12: x}",
            "prompts.instructions={STS12: x} adds keys to prompts.instructions, which Hydra "
            "merges a map into: replace the whole map with '++prompts.instructions={STS12: x}', "
            "or add one key with '+prompts.instructions.<name>=<value>'",
        ),
    ],
)
def test_a_key_to_add_says_how_to_add_it(monkeypatch, capsys, override, said):
    ran = []
    assert _run(monkeypatch, capsys, ran.append, "model=minilm", override) == (
        2,
        [f"error: {said}"],
    )
    assert not ran


@pytest.mark.parametrize(
    "fine",
    [
        "++runtime.overwrite=true",
        "+text=hello",
        "hydra/launcher=joblib",
        "+prompts.instructions.MyTask=Compare",
        "+model.token_prepending.end_layer=6",
    ],
)
def test_what_the_commands_read_is_not_refused_as_an_unread_key(fine):
    # a key they set, one they take appended, a group's option
    assert compose_config("mteb", [fine]) is not None


@pytest.mark.parametrize(
    ("args", "said"), [(("--cfg", "jobb"), "--cfg jobb"), (("--cfg",), "--cfg")]
)
def test_cfg_takes_job_hydra_or_all(monkeypatch, capsys, args, said):
    # (argparse's 9-line usage before)
    code, lines = _run(monkeypatch, capsys, print, *args)
    assert (code, lines) == (
        2,
        [f"error: {said}: give job (every key of the command's config), hydra or all"],
    )


@pytest.mark.parametrize("sweep", ["mrl.dim=128,256", "mrl.dim=range(128,384,128)"])
def test_cfg_of_a_sweep_asks_for_one_of_its_values(monkeypatch, capsys, sweep):
    # (Hydra's "ambiguous value ... add --multirun" before, with -m given)
    ran = []
    code, lines = _run(monkeypatch, capsys, ran.append, "-m", sweep, "--cfg", "job")
    assert (code, ran) == (2, [])
    assert lines == [
        f"error: --cfg prints one job's config, and {sweep} sweeps (-m): give one of its values "
        "to print that job's config"
    ]
    # one value: -m is dropped and that job's config printed (Hydra takes one of the two flags)
    assert _run(monkeypatch, capsys, ran.append, "-m", "mrl.dim=128", "--cfg", "job") == (0, [])


@pytest.mark.parametrize(
    "override", ["canonical.model.max_length=32", "+canonical.model.foo=1", "~canonical.prompts"]
)
def test_the_official_configuration_is_not_to_be_overridden(monkeypatch, capsys, override):
    # else a changed run would be filed as official, or the official one as a variant
    ran = []
    code, lines = _run(monkeypatch, capsys, ran.append, "model=minilm", override)
    key = override.lstrip("+~").partition("=")[0]
    assert (code, ran) == (2, []) and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {key} is the official configuration, composed from the ")
    assert f"set {key.removeprefix('canonical.')} instead" in lines[0]


def test_override_of_a_renamed_recipe_key_names_the_new_key(monkeypatch, capsys):
    code, lines = _run(monkeypatch, capsys, lambda cfg: None, "prompts.both_sides=[STS12]")
    assert (code, lines) == (
        2,
        [
            "error: prompts.both_sides is deprecated and renamed prompts.instruction_on_all_texts "
            "(same meaning): override prompts.instruction_on_all_texts instead"
        ],
    )


def test_failed_write_names_the_config_key_and_folder(monkeypatch, capsys, tmp_path):
    store = tmp_path / "store"

    def disk_full(cfg) -> None:
        cause = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise WriteError(store / "fp" / "a.vecs.npy", cause)

    code, lines = _run(monkeypatch, capsys, disk_full, f"runtime.store_dir={store}")
    assert code == 1
    assert lines == [
        f"error: runtime.store_dir={store}: cannot write {store}/fp/a.vecs.npy: No space left "
        "on device; finished results and stored vectors are kept; fix it and rerun"
    ]


def test_read_only_mount_met_anywhere_is_one_line(monkeypatch, capsys, tmp_path):
    def read_only(cfg) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "x"))

    code, lines = _run(monkeypatch, capsys, read_only)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"error: {tmp_path / 'x'}: Read-only file system;")


def test_read_only_home_names_the_library_and_its_variable(monkeypatch, capsys, tmp_path):
    """A library that creates its cache under a read-only home folder (mteb does on import)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    cache = tmp_path / ".cache"
    library: dict = {"__name__": "mteb.cache.result_cache", "errno": errno, "os": os}
    exec(  # a function of "mteb": the frame's module is what names the library
        "def make_cache(path):\n    raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)\n",
        library,
    )
    code, lines = _run(monkeypatch, capsys, lambda cfg: library["make_cache"](str(cache)))
    assert (code, lines) == (
        1,
        [
            f"error: {cache}: Read-only file system (mteb writes its cache there: set "
            "MTEB_CACHE to a writable folder); finished results and stored vectors are kept; "
            "fix it and rerun"
        ],
    )

    def ours(cfg) -> None:  # not a library's: the generic hint
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(cache / "x"))

    code, lines = _run(monkeypatch, capsys, ours)
    assert code == 1 and "set XDG_CACHE_HOME (or HOME) to a writable folder" in lines[0]


@pytest.mark.parametrize("command", ["prompts", "list"])
def test_a_home_that_is_a_file_is_one_line_as_a_command_imports(
    monkeypatch, capsys, tmp_path, command
):
    # mteb makes ~/.cache/mteb as it is imported, before any app runs: HOME=/etc/passwd gave a
    # NotADirectoryError traceback
    from qzhou_eval import cli, listing

    home = tmp_path / "home"
    home.write_text("a file")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    cache = home / ".cache" / "mteb"
    library: dict = {"__name__": "mteb.cache.result_cache", "errno": errno, "os": os}
    exec(  # a function of "mteb": the frame's module is what names the library
        "def make_cache(*args, **kwargs):\n"
        f"    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), {str(cache)!r})\n",
        library,
    )
    if command == "prompts":
        monkeypatch.setattr(cli.importlib, "import_module", library["make_cache"])
    else:
        monkeypatch.setattr(listing, "compose_config", library["make_cache"])
    with pytest.raises(SystemExit) as e:
        cli.main([command, *(["tasks"] if command == "list" else [])])
    assert e.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {cache}: Not a directory (mteb writes its cache there: set MTEB_CACHE to a "
        "writable folder); fix it and rerun"
    ]


def test_ctrl_c_is_one_line_exit_130(monkeypatch, capsys):
    def interrupted(cfg) -> None:
        raise KeyboardInterrupt

    assert _run(monkeypatch, capsys, interrupted) == (130, [app.INTERRUPTED])
    assert app.INTERRUPTED == (
        "interrupted: finished results and stored vectors are kept; rerun the same command to "
        "resume"
    )


def test_sigterm_stops_like_ctrl_c_exit_143(monkeypatch, capsys):
    def preempted(cfg) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends before killing the job
        raise AssertionError("SIGTERM did not stop the command")

    assert _run(monkeypatch, capsys, preempted) == (143, [app.stop_line(signal.SIGTERM)])
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored after the command


def _cleanup_fails_after(signum: int) -> None:
    """A library interrupted by a signal whose cleanup then fails on the state it left (as
    omegaconf's can while Hydra composes: AttributeError, or Hydra's config error wording it)."""
    try:
        os.kill(os.getpid(), signum)
        time.sleep(5)
    finally:
        raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")


@pytest.mark.parametrize("where", ["composing", "in the job"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_that_a_library_turns_into_another_error_is_still_the_stop_line(
    monkeypatch, capsys, where, signum
):
    # (a traceback, or "error: invalid configuration", 3 times in 150 Ctrl-C of `shards`)
    def fails(*args) -> None:
        _cleanup_fails_after(signum)

    precheck = app._precheck
    if where == "composing":
        monkeypatch.setattr(app, "_precheck", fails)
    ran = []
    code, lines = _run(monkeypatch, capsys, fails if where == "in the job" else ran.append)
    assert (code, lines, ran) == (128 + signum, [app.stop_line(signum)], [])
    # the next command of this process is not taken for stopped
    monkeypatch.setattr(app, "_precheck", precheck)
    assert _run(monkeypatch, capsys, lambda cfg: None) == (0, [])


def test_sighup_stops_like_sigterm_exit_129(monkeypatch, capsys):
    def hung_up(cfg) -> None:
        os.kill(os.getpid(), signal.SIGHUP)  # what a closed terminal or ssh session sends
        raise AssertionError("SIGHUP did not stop the command")

    assert _run(monkeypatch, capsys, hung_up) == (129, [app.stop_line(signal.SIGHUP)])
    assert app.stop_line(signal.SIGHUP).startswith(
        "terminated (SIGHUP: the terminal or session closed): finished"
    )
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


@pytest.mark.parametrize(
    ("kept", "stopped", "expected"),
    [
        # report, prompts, shards, check: nothing to keep, nothing to resume
        (None, signal.SIGINT, (130, ["interrupted"])),
        (None, signal.SIGTERM, (143, ["terminated (SIGTERM)"])),
        (
            "finished and staged downloads are kept",  # the mirror's
            signal.SIGHUP,
            (
                129,
                [
                    "terminated (SIGHUP: the terminal or session closed): finished and staged "
                    "downloads are kept; rerun the same command to resume"
                ],
            ),
        ),
    ],
)
def test_a_commands_stop_line_names_what_it_keeps(monkeypatch, capsys, kept, stopped, expected):
    def stopped_by_a_signal(cfg) -> None:
        os.kill(os.getpid(), stopped)
        raise AssertionError("the signal did not stop the command")

    monkeypatch.setattr(sys, "argv", ["app"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        hydra_app("mteb", kept=kept)(stopped_by_a_signal)()
    err = capsys.readouterr().err
    assert (e.value.code, [ln for ln in err.splitlines() if ln.strip()]) == expected
    # and a failed write says no more than what the command keeps
    monkeypatch.setattr(sys, "argv", ["app"])

    def disk_full(cfg) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/somewhere/report.md")

    with pytest.raises(SystemExit) as e:
        hydra_app("mteb", kept=kept)(disk_full)()
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    kept_clause = f"; {kept}" if kept else ""
    assert e.value.code == 1
    assert (
        line
        == f"error: /somewhere/report.md: No space left on device{kept_clause}; fix it and rerun"
    )


def test_the_report_keeps_nothing_and_says_so(monkeypatch, capsys):
    from qzhou_eval.report import cli as report_cli
    from tests.in_process import qzhou_eval

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_cli, "run_report", interrupted)
    ran = qzhou_eval("report", "out_dir=false")
    assert (ran.code, ran.err_lines) == (130, ["interrupted"])
    # the next command in this process says what it keeps
    assert _run(monkeypatch, capsys, interrupted) == (130, [app.INTERRUPTED])


def test_sighup_under_nohup_is_left_ignored(monkeypatch, capsys):
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup sets up
    try:

        def hung_up(cfg) -> None:
            os.kill(os.getpid(), signal.SIGHUP)

        assert _run(monkeypatch, capsys, hung_up) == (0, [])
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize(
    ("signum", "expected"),
    [
        (signal.SIGINT, (130, [app.INTERRUPTED])),
        (signal.SIGTERM, (143, [app.stop_line(signal.SIGTERM)])),
        (signal.SIGHUP, (129, [app.stop_line(signal.SIGHUP)])),
    ],
)
def test_a_signal_that_lands_in_a_finalizer_still_stops_the_command(
    monkeypatch, capsys, signum, expected
):
    """Python swallows an exception raised in ``__del__``: the signal is delivered again."""
    import gc
    import time

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signum)
            time.sleep(0.01)  # the handler runs here, inside __del__

    def collected(cfg) -> None:
        Finalized()
        gc.collect()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the command goes on, as a run would
            time.sleep(0.01)
        raise AssertionError("the signal was swallowed")

    assert _run(monkeypatch, capsys, collected) == expected
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_signal_that_lands_in_a_garbage_collector_callback_still_stops_the_command(
    monkeypatch, capsys
):
    """Python swallows what a ``gc.callbacks`` entry raises, as what ``__del__`` raises."""
    import gc
    import time

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs here, inside the callback

    def collected(cfg) -> None:
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the command goes on, as a run would
            time.sleep(0.01)
        raise AssertionError("the signal was swallowed")

    assert _run(monkeypatch, capsys, collected) == (130, [app.INTERRUPTED])


def test_a_bug_keeps_its_traceback(monkeypatch):
    def bug(cfg) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(sys, "argv", ["app"])
    with pytest.raises(ZeroDivisionError):
        hydra_app("mteb")(bug)()


def test_writable_folder_is_created_and_probed_without_leftovers(tmp_path):
    target = tmp_path / "a" / "b"
    check_writable_folder("runtime.results_dir", target)
    assert target.is_dir() and list(target.iterdir()) == []


def test_folder_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match=rf"^runtime\.store_dir={f} is a file, not a folder"):
        check_writable_folder("runtime.store_dir", f)
    with pytest.raises(ConfigError, match=r"^runtime\.store_dir=.*: a file is in the way"):
        check_writable_folder("runtime.store_dir", f / "sub")


@pytest.mark.parametrize(
    ("store", "extra", "needle"),
    [
        ("a_file", [], "is a file, not a folder"),
        ("missing", ["runtime.encode=false", "model.path=/nonexistent"], "does not exist"),
        # the folder the run summary names: one model configuration's, inside the store
        ("store/0123", [], "is the folder of one model configuration's vectors"),
        ("store/0123", ["runtime.encode=false", "model.path=/nonexistent"], "point runtime.sto"),
    ],
)
def test_a_store_the_run_refuses_leaves_no_results_folder(tmp_path, store, extra, needle):
    from tests.in_process import qzhou_eval

    (tmp_path / "a_file").write_text("x")
    (tmp_path / "store" / "0123").mkdir(parents=True)
    (tmp_path / "store" / "0123" / "abcd.keys.npy").write_bytes(b"")
    results = tmp_path / "results"
    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        f"runtime.results_dir={results}",
        f"runtime.store_dir={tmp_path / store}",
        *extra,
    )
    (line,) = run.err_lines
    assert run.code == 2 and line.startswith("error: runtime.store_dir=") and needle in line
    assert not results.exists()  # not even empty


@pytest.mark.parametrize("results", ["a_file", "a_file/sub"])
def test_a_results_folder_the_run_refuses_leaves_no_store_folder(tmp_path, results):
    # the store is checked (and created) first: refused after all, it is removed again
    from tests.in_process import qzhou_eval

    (tmp_path / "a_file").write_text("x")
    store = tmp_path / "new" / "store"
    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        f"runtime.results_dir={tmp_path / results}",
        f"runtime.store_dir={store}",
    )
    (line,) = run.err_lines
    assert run.code == 2 and line.startswith("error: runtime.results_dir=")
    assert not (tmp_path / "new").exists()  # neither the store nor the folder made for it


def test_read_only_folder(tmp_path, monkeypatch):
    # Running as root, chmod does not make a folder unwritable; the probe's open fails as it
    # does on a read-only mount.
    from qzhou_eval import atomic

    def read_only(tmp: Path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp))

    monkeypatch.setattr(atomic, "_open_temp", read_only)
    with pytest.raises(
        ConfigError, match=rf"^runtime\.results_dir={tmp_path} is not writable: Read-only file"
    ):
        check_writable_folder("runtime.results_dir", tmp_path)
    with pytest.raises(ConfigError, match="is not writable"):  # folders it made are removed
        check_writable_folder("runtime.results_dir", tmp_path / "new" / "results")
    assert not (tmp_path / "new").exists()


def test_a_store_folder_not_writable_suggests_scoring_from_it_only_where_it_holds_vectors(
    tmp_path, monkeypatch
):
    # (root: the probe's open fails as on a read-only mount) A store that does not exist, or
    # holds no vectors of this model, has none to score from: the hint would lead to "does not
    # exist" or to every task listed as lacking its inputs. (Where it holds some:
    # tests/runs/test_faults.py.)
    from qzhou_eval import atomic
    from tests.in_process import qzhou_eval

    def read_only(tmp: Path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp))

    monkeypatch.setattr(atomic, "_open_temp", read_only)
    (tmp_path / "store").mkdir()
    for store in (tmp_path / "store", tmp_path / "nowhere"):
        run = qzhou_eval(
            "run",
            "model=minilm",
            "benchmark=demo_eng",
            f"runtime.results_dir={tmp_path / 'results'}",
            f"runtime.store_dir={store}",
        )
        (line,) = run.err_lines
        assert run.code == 2 and line.startswith(f"error: runtime.store_dir={store} is not ")
        assert "runtime.encode=false" not in line, line
    assert not (tmp_path / "nowhere").exists()


def test_a_signal_inside_importlibs_module_lock_callback_is_delivered_again():
    # importlib drops a module lock in a weakref callback, where Python swallows what is
    # raised; in a pipelined run another thread's import can run it in the main thread. An
    # import itself is not such a place.
    import gc
    import importlib._bootstrap as bootstrap

    frames = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "cb":
            frames.append(frame)

    sys.setprofile(profile)
    try:
        lock = bootstrap._get_module_lock("qzhou_eval_no_such_module")
        del lock
        gc.collect()
    finally:
        sys.setprofile(None)
    assert frames, "importlib no longer drops its module locks in a callback named cb"
    assert app._in_finalizer(frames[0])

    class Finder:  # a frame inside an import
        def find_spec(self, name, path, target=None):
            if name == "qzhou_eval_no_such_module":
                frames.append(sys._getframe())

    finder = Finder()
    sys.meta_path.insert(0, finder)
    try:
        with pytest.raises(ModuleNotFoundError):
            __import__("qzhou_eval_no_such_module")
    finally:
        sys.meta_path.remove(finder)
    assert not app._in_finalizer(frames[-1])


def test_a_signal_inside_a_weak_containers_callback_is_delivered_again():
    # a Ctrl-C raised in WeakKeyDictionary's remove was swallowed ("Exception ignored in ...")
    # and the run went on to its end (a trial reading a large mirror)
    import gc
    import weakref

    frames = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_name in ("remove", "_remove", "__call__"):
            frames.append(frame)

    class Key:
        pass

    keys, values, members = weakref.WeakKeyDictionary(), weakref.WeakValueDictionary(), set()
    weak = weakref.WeakSet()
    key, value, member, finalized = Key(), Key(), Key(), Key()
    keys[key], values[1] = 1, value
    weak.add(member)
    weakref.finalize(finalized, members.add, 1)
    sys.setprofile(profile)
    try:
        del key, value, member, finalized
        gc.collect()
    finally:
        sys.setprofile(None)
    callbacks = sorted(f.f_code.co_name for f in frames if "weakref" in f.f_code.co_filename)
    assert callbacks == ["__call__", "_remove", "remove", "remove"] and members == {1}
    assert all(app._in_finalizer(f) for f in frames)

    def remove():  # a function of that name elsewhere is not one
        frames.append(sys._getframe())

    remove()
    assert not app._in_finalizer(frames[-1])


SLOW_APP = """
import atexit, os, sys, threading, time
from qzhou_eval.config import hydra_app

def slow_exit() -> None:
    print("exiting", flush=True)
    time.sleep(60)

@hydra_app("mteb")
def main(cfg) -> None:
    if os.environ["MODE"] == "done":  # the command is done; the interpreter's shutdown is slow
        atexit.register(slow_exit)
        print("started", flush=True)
        return
    # a thread at work that the interpreter's exit would wait for (or, in a library's native
    # code, abort on: "terminate called without an active exception")
    threading.Thread(target=time.sleep, args=(60,)).start()
    if os.environ["MODE"] == "thread":  # a library's thread left at work, a quick way out
        print("started", flush=True)
        time.sleep(60)
    try:
        print("started", flush=True)
        time.sleep(60)
    finally:  # a slow way out, as a stream storing what it computed
        print("stopping", flush=True)
        time.sleep(60)

if os.environ.get("AS_PROCESS"):  # as the console script and the apps' __main__ run it
    from qzhou_eval.config.app import run_as_process

    run_as_process(main)
else:
    main()
"""


def _slow_app(tmp_path: Path, mode: str, as_process: bool = False):
    import subprocess

    script = tmp_path / "slow_app.py"
    script.write_text(SLOW_APP)
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "MODE": mode, **({"AS_PROCESS": "1"} if as_process else {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_ctrl_c_ends_the_way_out_at_once_with_the_one_line(tmp_path):
    proc = _slow_app(tmp_path, "stop")
    try:
        assert proc.stdout.readline() == "started\n"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline() == "stopping\n"
        proc.send_signal(signal.SIGINT)  # the way out and the thread: not waited for
        proc.wait(timeout=30)
        err = proc.stderr.read()
        assert proc.returncode == 130, err
        assert err.splitlines() == [app.INTERRUPTED]  # once, no traceback
    finally:
        proc.kill()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_command_does_not_wait_for_a_librarys_thread(tmp_path, signum):
    # a run stopped while datasets built a large mirror's tables hung until SIGKILL after its
    # line (the interpreter joining the threads), or aborted ("Fatal Python error:
    # PyGILState_Release", exit 134) as it finalized with one still in native code (a trial)
    proc = _slow_app(tmp_path, "thread", as_process=True)
    try:
        assert proc.stdout.readline() == "started\n"
        proc.send_signal(signum)
        proc.wait(timeout=20)  # (the thread sleeps 60 s)
        err = proc.stderr.read()
        assert proc.returncode == 128 + signum, err
        assert err.splitlines() == [app.stop_line(signum)]
    finally:
        proc.kill()


def test_a_signal_once_the_command_is_done_ends_the_process_quietly(tmp_path):
    proc = _slow_app(tmp_path, "done")
    try:
        assert proc.stdout.readline() == "started\n"
        assert proc.stdout.readline() == "exiting\n"  # an atexit callback (torch has one)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        assert proc.returncode == 130
        assert proc.stderr.read() == ""  # not "Exception ignored in atexit callback" and a trace
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("override", "line"),
    [
        # a value where a section of settings goes (they were tracebacks)
        ("mrl=5", "mrl=5: mrl is a section of settings, not a value; set its keys (mrl.dims=...)"),
        (
            "model.token_prepending=",
            "model.token_prepending='': model.token_prepending is a section of settings, not a "
            "value; set its keys (model.token_prepending.enabled=...)",
        ),
        ("benchmark.tasks=5", "benchmark.tasks=5: give task names, e.g. 'benchmark.tasks=["),
        # a config group given a number, true/false or null (Hydra's ValueError)
        ("data=5", "data=5: data picks a file of conf/data/; use one of ['default']"),
        ("model=null", "model=null: model picks a file of conf/model/; use one of ['hf_auto', "),
        ("benchmark=true", "benchmark=true: benchmark picks a file of conf/benchmark/; use one"),
        # a list: Hydra merged the files (benchmark=[a,b] ran), or failed on it (a traceback)
        (
            "benchmark=[demo_eng,demo_zho]",
            "benchmark=[demo_eng,demo_zho]: benchmark picks one file of conf/benchmark/, not a "
            "list; use one of ['cmteb', 'demo_eng', 'demo_zho', 'mteb_eng_v2']; to run several, "
            "sweep them: -m benchmark=demo_eng,demo_zho",
        ),
        ("runtime=[1]", "runtime=[1]: runtime picks one file of conf/runtime/, not a list; use"),
        ("model=[minilm]", "model=[minilm]: model picks one file of conf/model/, not a list; use"),
        ("mrl=[64]", "mrl=[64]: mrl is a section of settings, not a value; set its keys (mrl."),
    ],
)
def test_a_value_where_a_section_or_a_file_goes_is_one_line(tmp_path, override, line):
    from tests.in_process import qzhou_eval

    run = qzhou_eval(
        "run",
        "model=minilm",
        "benchmark=demo_eng",
        f"runtime.results_dir={tmp_path / 'r'}",
        f"runtime.store_dir={tmp_path / 's'}",
        override,
    )
    assert run.code == 2 and "Traceback" not in run.err
    assert len(run.err_lines) == 1 and run.err_lines[0].startswith(f"error: {line}")
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()  # nothing made


def test_a_library_logger_with_its_own_handler_prints_each_warning_once(monkeypatch, capfd):
    # huggingface_hub's stderr handler printed each of its retries a second time (the mirror)
    import logging

    import huggingface_hub.utils._http  # noqa: F401  (its logger gets its own handler then)

    def retrying(cfg) -> None:
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")

    monkeypatch.setattr(sys, "argv", ["app"])
    hydra_app("mteb")(retrying)()
    out, err = capfd.readouterr()
    assert out.splitlines() == ["warning: Retrying in 1s [Retry 1/5]."] and err == ""


def test_each_line_goes_to_stderr_in_one_write(monkeypatch):
    # a sweep's jobs and its command stop at once; print's two writes (text, newline) ran two
    # processes' lines together once: "...to resumeinterrupted: ..." (an unbuffered stderr)
    class Writes:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def write(self, text: str) -> int:
            self.calls.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    stderr = Writes()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setitem(app._stop, "signal", None)
    monkeypatch.setitem(app._stop, "quiet", app._stop["quiet"])  # (as it was, after)
    assert app._report(KeyboardInterrupt(), None) == 130
    assert app._report(ConfigError("a bad value"), None) == 2
    assert stderr.calls == [app.INTERRUPTED + "\n", "error: a bad value\n"]


def test_a_name_longer_than_the_file_system_allows_is_one_line(tmp_path):
    # any lookup of such a path fails (ENAMETOOLONG), not only a write: tracebacks from the
    # run's first look at its results folder, after the model loaded, and from every command
    from tests.in_process import qzhou_eval

    long = tmp_path / ("a" * 256)
    common = ("model=minilm", "benchmark=demo_eng", "benchmark.tasks=[DemoEngSTS]")
    for key, value, says in (
        ("runtime.results_dir", long, "makes a folder name of 256 bytes"),
        ("runtime.store_dir", long / "x", "makes a folder name of 256 bytes"),
        ("model.name", "org/" + "b" * 254, "makes a folder name of 259 bytes (org__bbb"),
    ):
        folders = {"runtime.results_dir": tmp_path, "runtime.store_dir": tmp_path, key: value}
        run = qzhou_eval("run", *common, *(f"{k}={v}" for k, v in folders.items()))
        assert run.code == 2 and len(run.err_lines) == 1, run.err
        assert run.err_lines[0].startswith(f"error: {key}=") and says in run.err_lines[0]
    run = qzhou_eval("report", f"results_dir={long}", "benchmark=demo_eng")
    assert run.code == 2 and len(run.err_lines) == 1, run.err
    assert run.err_lines[0].endswith(
        ": a file or folder name in it is longer than the file system allows (255 bytes): "
        "shorten it"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["cwd"]  # (the fixture's): nothing made


@pytest.mark.parametrize("flag", ["--foo", "-x", "--foo=1"])
def test_an_option_the_command_lacks_is_one_line(tmp_path, flag):
    # Hydra's argparse printed its usage block first
    from tests.in_process import qzhou_eval

    run = qzhou_eval("run", "model=minilm", f"runtime.results_dir={tmp_path / 'r'}", flag)
    assert run.code == 2 and run.out == ""
    assert run.err_lines == [
        f"error: {flag} is not an option of this command: it takes key=value settings and "
        "Hydra's options (-m to sweep, --cfg job, --help)"
    ]
    assert not (tmp_path / "r").exists()


def test_a_thread_failing_once_the_command_stops_prints_nothing(monkeypatch):
    # joblib's executor thread, killing its workers on Ctrl-C, printed a traceback when the same
    # Ctrl-C reached the pgrep it runs
    import threading

    seen: list[str] = []

    def fail() -> None:
        raise RuntimeError("a thread's failure")

    def run_thread() -> None:
        thread = threading.Thread(target=fail)
        thread.start()
        thread.join()

    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(str(args.exc_value)))
    monkeypatch.setitem(app._stop, "signal", None)
    monkeypatch.setitem(app._stop, "pipe", False)
    with app._signals_raise():
        run_thread()
        assert seen == ["a thread's failure"]  # not stopping: printed as ever
        app._stop["signal"] = signal.SIGINT
        run_thread()
        assert seen == ["a thread's failure"]


@pytest.mark.parametrize("name", ["a__b", "embed_dim_32", "__embed_dim_32", "a___output_dtypes_x"])
def test_an_experiment_name_mteb_files_apart_from_a_size_or_precision_is_taken(name):
    # mteb's folder is experiment_<name>: only a "__" part of that reads as a size or precision
    from qzhou_eval.config.spec import experiment_name

    assert experiment_name({"experiment": name}) == name
