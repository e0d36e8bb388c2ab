"""`s2i tensorboard`: a real TensorBoard server over the data folder's event files, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_s2i_tensorboard_serves_the_runs_of_the_data_folder(tmp_path):
    from s2i_models.train import EventLog

    run = tmp_path / "gan_128" / "train" / "abc"
    events = EventLog(run, 0, "gan")
    for epoch in (1, 2, 3):
        events.epoch({"epoch": epoch, "pixel_loss": 1.0 / epoch, "informativity": 0.1 * epoch})
    events.close()

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "tensorboard",
            "--data-dir",
            str(tmp_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, tags = time.monotonic() + 90, None
        while time.monotonic() < deadline and tags is None:
            try:
                url = f"http://127.0.0.1:{port}/data/plugin/scalars/tags"
                with urllib.request.urlopen(url, timeout=5) as response:
                    tags = json.loads(response.read())
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                time.sleep(0.5)
        assert tags is not None, "TensorBoard did not answer within 90 s"
        (run_name,) = tags
        assert "gan_128" in run_name and {"gan/pixel_loss", "gan/informativity"} <= set(tags[run_name])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_s2i_tensorboard_says_what_to_do_without_runs(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["tensorboard", "--data-dir", str(tmp_path)]) == 2
    assert "no TensorBoard event files" in capsys.readouterr().err
    assert main(["tensorboard", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "no data folder" in capsys.readouterr().err


pytestmark = pytest.mark.timeout(180)
