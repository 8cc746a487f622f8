"""The wheel carries everything: built from this tree, installed into a fresh virtualenv
away from the clone, it runs `mp demo` and installs the reference scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import build_wheel

REPO = Path(__file__).resolve().parents[2]


def test_a_wheel_install_runs_the_demo_and_installs_the_scripts(tmp_path):
    wheel = build_wheel(tmp_path / "wheels")
    names = zipfile.ZipFile(wheel).namelist()
    assert "media_pipeline/scripts/filebot-process.sh" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    # Its dependencies from the test environment (no network needed): the wheel's own
    # media_pipeline comes first on the path, the clone's is nowhere on it.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MP_CONFIG", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    where = subprocess.run(
        [str(venv / "bin" / "mp"), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert where.returncode == 0
    found = subprocess.run(
        [str(python), "-c", "import media_pipeline; print(media_pipeline.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert found.startswith(str(venv)), found

    demo = subprocess.run(
        [str(venv / "bin" / "mp"), "demo", str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert "IN_LIBRARY (8)" in demo.stdout

    installed = subprocess.run(
        [str(venv / "bin" / "mp"), "scripts", "install", "--dest", str(tmp_path / "opt")],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert "6 reference scripts copied" in installed
    assert os.access(tmp_path / "opt" / "filebot-process.sh", os.X_OK)
    (tmp_path / "opt" / "rip-disc.sh").write_text("#!/bin/sh\n# the owner's own\n")
    again = subprocess.run(
        [str(venv / "bin" / "mp"), "scripts", "install", "--dest", str(tmp_path / "opt")],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert "0 reference scripts copied" in again and "left as they were" in again
    assert "rip-disc.sh" in again.split("left as they were")[1]
    assert (tmp_path / "opt" / "rip-disc.sh").read_text().endswith("the owner's own\n")
