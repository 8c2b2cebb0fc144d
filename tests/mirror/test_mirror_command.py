"""``qzhou-eval mirror``: what it says before (or instead of) going to the Hub."""

from __future__ import annotations

from tests.in_process import qzhou_eval


def test_demo_suites_need_no_mirror(tmp_path):
    run = qzhou_eval("mirror", "benchmark=demo_eng", f"data.mirror={tmp_path / 'm'}")
    assert run.code == 0 and run.err_lines == []
    assert run.out.splitlines() == [
        "benchmark=demo_eng: the demo suites are built from installed packages and need no "
        "mirror; nothing to download"
    ]
    assert not (tmp_path / "m").exists()
    # ... but a file named as the mirror is refused, as for any other suite (a run refuses it;
    # one job script serves every suite)
    (tmp_path / "m").write_text("not a folder")
    refused = qzhou_eval("mirror", "benchmark=demo_eng", f"data.mirror={tmp_path / 'm'}")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err_lines == [
        f"error: data.mirror={tmp_path / 'm'} is a file, not a folder; point data.mirror at a "
        "folder"
    ]


def test_a_file_as_the_mirror_is_named_and_not_blamed_on_the_hub(tmp_path):
    file = tmp_path / "mirror.tar"
    file.write_text("not a folder")
    run = qzhou_eval("mirror", "benchmark=cmteb", "benchmark.tasks=[BQ]", f"data.mirror={file}")
    assert run.code == 2 and "Traceback" not in run.err
    assert run.err_lines == [
        f"error: data.mirror={file} is a file, not a folder; point data.mirror at a folder"
    ]
    assert run.out == ""  # refused before it lists or fetches anything


def test_a_local_write_problem_inside_the_mirror_is_not_blamed_on_the_hub(tmp_path):
    mirror = tmp_path / "m"
    (mirror / ".staging").parent.mkdir()
    (mirror / ".staging").write_text("a file where the staging folder goes")
    run = qzhou_eval("mirror", "benchmark=cmteb", "benchmark.tasks=[BQ]", f"data.mirror={mirror}")
    assert run.code == 2 and "Traceback" not in run.err
    assert len(run.err_lines) == 1 and "Hub" not in run.err_lines[0]
    assert (mirror / ".staging").is_file()  # a folder the user made stays
    assert run.err_lines[0].startswith(f"error: data.mirror={mirror}: cannot write {mirror}")


def test_a_download_that_fails_offline_names_the_offline_setting(tmp_path):
    # the tests run with HF_HUB_OFFLINE=1 (conftest): the Hub is not asked, and the line says so
    mirror = tmp_path / "m"
    run = qzhou_eval("mirror", "benchmark=cmteb", "benchmark.tasks=[BQ]", f"data.mirror={mirror}")
    assert run.code == 2 and "Traceback" not in run.err and len(run.err_lines) == 1
    assert run.err_lines[0].startswith(
        f"error: could not download into mirror {mirror} (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE "
        "is set: unset it to download): "
    )
    assert not mirror.exists()


def test_a_blank_mirror_is_refused_not_read_as_none(tmp_path):
    # data.mirror=$MIRROR with MIRROR unset: a run would read its data from the Hub instead
    for command in ("mirror", "run"):
        run = qzhou_eval(command, "benchmark=cmteb", "benchmark.tasks=[BQ]", "data.mirror=")
        assert run.code == 2 and "Traceback" not in run.err
        assert run.err_lines == [
            "error: data.mirror='': give a mirror folder, or null to read the Hugging Face "
            "cache or Hub"
        ]


def test_an_unreachable_hub_is_one_line_in_seconds_and_leaves_nothing(tmp_path, monkeypatch):
    # (without the probe: 5 retries over about 27 s, each warning printed twice, then a line,
    # and an empty .staging folder left in the mirror)
    from qzhou_eval.config import hub

    probes: list[float] = []

    def unreachable(timeout: float = hub.PROBE_TIMEOUT_S) -> bool:
        probes.append(timeout)  # (the tests reach no network: the probe's answer, as one)
        return False

    monkeypatch.setattr(hub, "reachable", unreachable)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    mirror = tmp_path / "m"
    run = qzhou_eval("mirror", "benchmark=cmteb", "benchmark.tasks=[BQ]", f"data.mirror={mirror}")
    assert run.code == 2 and "Traceback" not in run.err and probes == [5.0]
    assert run.err_lines == [
        f"error: the Hugging Face Hub (127.0.0.1) cannot be reached (a 5 s connection probe) to "
        f"download into mirror {mirror}: run this on a machine that reaches it (HF_ENDPOINT "
        "names another Hub, HTTPS_PROXY a proxy)"
    ]
    assert not mirror.exists()  # the folder it made for the downloads is gone again
