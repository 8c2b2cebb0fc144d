"""Every file in conf/ composes, and the composed configs validate (or fail as documented)."""

import re
from pathlib import Path

import pytest

from qzhou_eval.config import CONF_DIR, compose_config
from qzhou_eval.config.spec import model_spec, mrl_dims, mrl_points, mrl_precisions, runtime_spec
from qzhou_eval.errors import ConfigError
from qzhou_eval.precision import Point
from qzhou_eval.recipe import recipe_from_config

PRIMARY = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
GROUP_FILES = sorted(
    (p.parent.name, p.stem) for p in CONF_DIR.glob("*/*.yaml") if p.parent.name != "hydra"
)


def test_conf_dir_has_the_documented_groups():
    groups = {g for g, _ in GROUP_FILES}
    assert {"model", "prompts", "benchmark", "runtime", "data"} <= groups
    assert {"mteb", "cmteb"} <= set(PRIMARY)


@pytest.mark.parametrize("name", PRIMARY)
def test_primary_config_composes(name):
    cfg = compose_config(name)
    assert "benchmark" in cfg


@pytest.mark.parametrize(("group", "option"), GROUP_FILES)
def test_every_group_file_composes(group, option):
    cfg = compose_config("mteb", [f"{group}={option}"])
    section = cfg[group]
    assert section is not None
    if group == "model" and option != "hf_auto":
        spec = model_spec(section)
        assert spec.max_length > 0
    if group == "prompts":
        recipe_from_config(section)
    if group == "runtime":
        runtime_spec(section)


def test_default_prompts_follow_the_model():
    assert compose_config("mteb").prompts.name == "qzhou_embedding"
    assert compose_config("mteb", ["model=minilm"]).prompts.name == "minilm"
    assert compose_config("cmteb").benchmark.name == "MTEB(cmn, v1)"


def test_hf_auto_needs_a_name():
    cfg = compose_config("mteb", ["model=hf_auto"])
    with pytest.raises(ConfigError, match=r"model\.name"):
        model_spec(cfg.model)
    cfg = compose_config("mteb", ["model=hf_auto", "model.name=org/m", "model.path=org/m"])
    assert model_spec(cfg.model).name == "org/m"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.pooling=average", "model.pooling"),
        ("model.dtype=float64", "model.dtype"),
        ("model.backend=onnx", "model.backend"),
        ("model.max_length=0", "model.max_length"),
        ("model.padding_side=middle", "model.padding_side"),
        ("model.path=/no/such/folder", "model.path"),
        ("model.path=", "model.path='': give a model folder"),  # not the Hub id in model.name
        ("model.path=false", "model.path=false: give a model folder"),
    ],
)
def test_bad_model_values_name_the_key(override, needle):
    cfg = compose_config("mteb", [override])
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        model_spec(cfg.model)


@pytest.mark.parametrize(
    "key",
    [
        "model.normalize",
        "model.trust_remote_code",
        "model.token_prepending.enabled",
        "runtime.overwrite",
        "runtime.progress",
        "runtime.continue_on_error",
        "runtime.packing",
        "runtime.encode",
    ],
)
def test_a_true_false_key_takes_only_true_or_false(key):
    # bool("no") is True: runtime.overwrite=no would overwrite finished results
    from qzhou_eval.config.spec import runtime_spec

    read = model_spec if key.startswith("model.") else runtime_spec
    base = ["model=qzhou_embedding_zh", "runtime.store_dir=x"]  # (its Token Prepending layers)
    asked = ": give true or false"
    quoted = " (quoted, it is a text: write it without the quotes)"
    for value, said in (
        ("no", f"'no'{asked}"),
        ("off", f"'off'{asked}"),
        ("0", f"0{asked}"),
        ("'false'", f"'false'{asked}{quoted}"),  # (unquoted, it would do)
    ):
        cfg = compose_config("mteb", [*base, f"{key}={value}"])
        with pytest.raises(ConfigError) as info:
            read(cfg.model if key.startswith("model.") else cfg.runtime)
        assert str(info.value) == f"{key}={said}"
    for value in ("true", "false", "True"):
        cfg = compose_config("mteb", [*base, f"{key}={value}"])
        read(cfg.model if key.startswith("model.") else cfg.runtime)


def test_unknown_group_option_is_one_line():
    with pytest.raises(ConfigError) as e:
        compose_config("mteb", ["model=nosuch"])
    assert "\n" not in str(e.value) and "nosuch" in str(e.value)


def test_mrl_dims():
    assert mrl_dims({"mrl": {"dim": None, "dims": None}}, 1792) == [None]
    assert mrl_dims({"mrl": {"dim": 256, "dims": None}}, 1792) == [256]
    # the full size is one identity, None, however it is asked for
    assert mrl_dims({"mrl": {"dim": None, "dims": [128, 1792]}}, 1792) == [128, None]
    assert mrl_dims({"mrl": {"dim": 1792, "dims": None}}, 1792) == [None]
    assert mrl_dims({"mrl": {"dim": None, "dims": [None]}}, None) == [None]
    # the full size unknown: neither a cut (perhaps larger) nor the full size by number is known
    for sizes in ({"dim": 768, "dims": None}, {"dim": None, "dims": [None, 64]}):
        with pytest.raises(ConfigError, match=r"needs the model's output size: set model\.embed"):
            mrl_dims({"mrl": sizes}, None)
    assert mrl_dims({"mrl": {"dim": None, "dims": 128}}, 1792) == [128]  # one size: a list of one
    for junk in ("abc", {"a": 1}):  # not read letter by letter, key by key
        with pytest.raises(ConfigError, match=r"mrl\.dims=.*give a list of positive integers"):
            mrl_dims({"mrl": {"dim": None, "dims": junk}}, 1792)
    for bad in (
        {"dim": 4096, "dims": None},
        {"dim": None, "dims": [128, 128]},
        {"dim": None, "dims": [None, 1792]},
        {"dim": 128, "dims": [256]},
        {"dim": -1, "dims": None},
        {"dim": None, "dims": 1.5},
        {"dim": None, "dims": True},
    ):
        with pytest.raises(ConfigError):
            mrl_dims({"mrl": bad}, 1792)


def test_mrl_precisions_and_points():
    def cfg(precisions, dims=None):
        return {"mrl": {"dim": None, "dims": dims, "precisions": precisions}}

    assert mrl_precisions(compose_config("mteb")) == ["float32"]  # the default: today's runs
    assert mrl_precisions(cfg("int8")) == ["int8"]  # one name is a list of one
    assert mrl_points(cfg(["float32", "binary"], [128, 1792]), 1792) == [
        Point(128, "float32"),
        Point(128, "binary"),
        Point(None, "float32"),
        Point(None, "binary"),
    ]
    for bad in (["int7"], [], ["int8", "int8"], 8, [None]):
        with pytest.raises(ConfigError, match=r"mrl\.precisions"):
            mrl_precisions(cfg(bad))


def test_conf_dir_is_the_repo_conf():
    assert Path(__file__).resolve().parents[2] / "conf" == CONF_DIR


def test_cmteb_is_mteb_with_another_benchmark():
    from omegaconf import OmegaConf

    mteb, cmteb = (OmegaConf.to_container(compose_config(n)) for n in ("mteb", "cmteb"))
    assert mteb.pop("benchmark")["key"] == "mteb_eng_v2"
    assert cmteb.pop("benchmark")["key"] == "cmteb"
    assert mteb == cmteb
    run_cmteb = compose_config("mteb", ["benchmark=cmteb"])
    assert run_cmteb.benchmark == compose_config("cmteb").benchmark


def test_hydra_settings_are_config():
    """No outputs/ folders, no .hydra copies, no log files, jobs stay in the cwd: conf/hydra/."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    for name in ("mteb", "cmteb", "report"):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(
                name,
                ["runtime.results_dir=/x/res"] if name != "report" else [],
                return_hydra_config=True,
            )
        hydra = cfg.hydra
        assert hydra.output_subdir is None and hydra.run.dir == "." and not hydra.job.chdir
        if name == "report":
            assert hydra.sweep.dir == "multirun"
        else:  # a sweep's job folders and launcher logs go beside the results, not into the cwd
            assert re.fullmatch(r"/x/res_jobs/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", hydra.sweep.dir)
        assert hydra.job_logging.handlers.console.stream == "ext://sys.stdout"
        # conf/hydra/job_logging/lines.yaml: a reader that goes away ends the command quietly
        assert (
            hydra.job_logging.handlers.console["class"] == "qzhou_eval.config.app.StdoutLogHandler"
        )
        assert "file" not in hydra.job_logging.handlers
        assert hydra.hydra_logging.loggers.hydra.level == "WARNING"
    GlobalHydra.instance().clear()


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g, o in GROUP_FILES if g in ("model", "runtime")]
)
def test_every_key_is_read_from_the_yaml(group, option):
    """Defaults are stated once, in the YAML: a key a file does not state is an error, not a
    silent default of the code's."""
    from omegaconf import OmegaConf

    cfg = compose_config("mteb", [f"{group}={option}", "model.name=org/m"])
    read = model_spec if group == "model" else runtime_spec
    read(cfg[group])
    section = OmegaConf.to_container(cfg[group], resolve=True)
    for key in sorted(set(section) - {"key"}):  # model.key: the runner's, not the spec's
        partial = {k: v for k, v in section.items() if k != key}
        with pytest.raises(ConfigError, match=rf"^{group}\.{key} is not set \("):
            read(partial)


def test_runtime_defaults_are_the_yaml():
    spec = runtime_spec(compose_config("mteb").runtime)
    assert str(spec.store_dir) == "embeddings" and str(spec.results_dir) == "results"


def test_lookahead_is_all_or_a_whole_number():
    def lookahead(value: str):
        return runtime_spec(compose_config("mteb", [f"runtime.lookahead={value}"]).runtime)

    assert runtime_spec(compose_config("mteb").runtime).lookahead is None  # all: no bound
    assert lookahead("0").lookahead == 0 and lookahead("3").lookahead == 3
    for bad in ("-1", "some", "1.5"):
        with pytest.raises(ConfigError, match=r"^runtime\.lookahead=.*or 'all'$"):
            lookahead(bad)


def test_the_job_logs_show_info_lines_of_ours_and_warnings_of_torch_as_warnings():
    # A run stopped while torch imports: torch's atexit hook logs its FakeTensor cache stats at
    # INFO, which the job logs printed after the one 'interrupted:' line.
    import subprocess
    import sys

    script = f"""
import logging.config
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
with initialize_config_dir(config_dir={str(CONF_DIR)!r}, version_base=None):
    cfg = compose("mteb", return_hydra_config=True)
logging.config.dictConfig(OmegaConf.to_container(cfg.hydra.job_logging, resolve=True))
logging.getLogger("torch._subclasses.fake_tensor").info("FakeTensor cache stats:")
logging.getLogger("torch._subclasses.fake_tensor").warning("a torch warning")
logging.getLogger("qzhou_eval.runs").info("a line of ours")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["warning: a torch warning", "a line of ours"]


def test_submitits_own_lines_are_printed_once():
    # submitit prints its records with handlers of its own (a submitit sweep's job logs had
    # each line twice: "submitit INFO (...) - Job completed successfully", then the same bare)
    import io
    import logging

    from qzhou_eval.config.app import StdoutLogHandler

    ours, theirs = io.StringIO(), io.StringIO()
    handler = StdoutLogHandler(ours)
    record = logging.LogRecord("submitit", logging.INFO, __file__, 1, "Job done", None, None)
    submitit = logging.getLogger("submitit")
    saved, submitit.handlers = submitit.handlers, []  # (as before submitit is imported)
    try:
        assert handler.filter(record)  # while submitit has no handler of its own: ours prints
        submitit.addHandler(logging.StreamHandler(theirs))
        assert not handler.filter(record)
        other = logging.LogRecord("qzhou_eval.x", logging.INFO, __file__, 1, "ours", None, None)
        assert handler.filter(other)
    finally:
        submitit.handlers = saved


def test_a_log_line_stdout_cannot_take_stops_the_command_as_ctrl_c_does(monkeypatch):
    """A log line that stdout fails (a full disk) stops the run: SIGINT to the main thread,
    and the app then prints the stdout line, not "interrupted" (no logging traceback)."""
    import errno
    import logging
    import signal

    from qzhou_eval.config import app

    class Full:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            pass

    sent = []
    monkeypatch.setattr(app.os, "kill", lambda pid, signum: sent.append(signum))
    monkeypatch.setitem(app._stop, "raising", True)
    monkeypatch.setitem(app._stop, "stdout_error", None)
    monkeypatch.setitem(app._stop, "quiet", False)
    monkeypatch.setitem(app._stop, "pipe", False)
    monkeypatch.setitem(app._stop, "signal", None)
    monkeypatch.setattr(app, "_stdout_to_devnull", lambda: None)
    handler = app.StdoutLogHandler(app._StdoutWrites(Full()))
    record = logging.LogRecord("qzhou_eval.x", logging.INFO, __file__, 1, "a line", None, None)
    handler.handle(record)
    handler.handle(record)  # once is enough
    assert sent == [signal.SIGINT]
    assert isinstance(app._stop["stdout_error"], app.StdoutError)
    assert app._report(KeyboardInterrupt(), None) == 1
