"""Both config-driven examples end to end, the way examples/ops/README.md runs them.

The examples are copied to a temp folder with run-unique session names (the real names,
astro-dev and astro-prod, may be in use on this machine), and the astro-bot image is built from
the example's own Containerfile on top of the local Python test image, with a run-unique tag
removed afterwards. Everything else is as written: ``python run.py``, ``--status``, ``--logs``,
``--stop``, and the seed's ``kstlib ops`` commands from the example folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PREFIX, REPO
from tests.helpers import KSTLIB, PYTHON_IMAGE, Done, retry_until, run_command

EXAMPLES = REPO / "examples" / "ops"
IMAGE = f"localhost/{PREFIX}-astro-bot:latest"
_built: dict[str, str] = {}

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")


class Examples:
    """A copy of examples/ops whose sessions are named ``names[real name]``."""

    def __init__(self, root: Path, names: dict[str, str]):
        self.root = root
        self.names = names
        self.tmux = root / "config_driven" / "tmux"
        self.container = root / "config_driven" / "container"

    def rename(self) -> None:
        for folder in (self.tmux, self.container):
            for file in ("kstlib.conf.yml", "run.py"):
                path = folder / file
                text = path.read_text()
                for real, unique in self.names.items():
                    text = text.replace(real, unique)
                path.write_text(text)

    def use(self, runtime: str, image: str | None = None) -> None:
        """Both configs on ``runtime`` (they say null: auto-detect), astro-bot as ``image``."""
        for folder in (self.tmux, self.container):
            path = folder / "kstlib.conf.yml"
            text = path.read_text()
            text = text.replace("container_runtime: null", f"container_runtime: {runtime}")
            if "container_runtime" not in text:
                text = text.replace("ops:\n", f"ops:\n  container_runtime: {runtime}\n", 1)
            if image:
                text = text.replace('image: "astro-bot"', f'image: "{image}"')
            path.write_text(text)

    def run_py(self, folder: Path, *args: str) -> Done:
        return run_command([sys.executable, "run.py", *args], folder)

    def kstlib(self, folder: Path, *args: str) -> Done:
        return run_command([KSTLIB, *args], folder)

    def status(self, folder: Path, name: str) -> dict:
        return json.loads(self.kstlib(folder, "ops", "status", name, "--json").ok().out)


@pytest.fixture
def examples(tmp_path: Path, unique_name: Callable[[str], str]) -> Examples:
    copy = Examples(tmp_path / "ops", {"astro-dev": unique_name("dev"),
                                       "astro-prod": unique_name("prod")})
    shutil.copytree(EXAMPLES, copy.root, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    copy.rename()
    return copy


@pytest.fixture(scope="module", autouse=True)
def remove_built_images() -> Iterator[None]:
    yield
    for runtime, image in _built.items():
        subprocess.run([runtime, "rmi", "-f", image], capture_output=True, timeout=120)


def astro_bot_image(runtime: str, examples: Examples) -> str:
    """The example image, built as the README says: ``<runtime> build -t ... .`` in
    examples/ops (docker reads the Dockerfile link, podman the Containerfile)."""
    if runtime not in _built:
        build = [runtime, "build", "--build-arg", f"BASE_IMAGE={PYTHON_IMAGE}", "-t", IMAGE, "."]
        env = dict(os.environ)
        if runtime == "podman":
            build.insert(2, "--pull=never")
        else:
            env["DOCKER_BUILDKIT"] = "0"
        done = subprocess.run(build, cwd=examples.root, capture_output=True, text=True,
                              timeout=600, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        _built[runtime] = IMAGE
    return _built[runtime]


def test_tmux_example_as_its_readme_runs_it(examples: Examples, tmux_available) -> None:
    here, dev = examples.tmux, examples.names["astro-dev"]
    listed = json.loads(examples.kstlib(here, "ops", "list", "--json").ok().out)
    assert any(d["name"] == dev and d["state"] == "defined" for d in listed)

    assert examples.run_py(here).ok().out.startswith(f"{dev}: started (tmux, pid ")
    assert examples.run_py(here, "--status").ok().out.startswith(f"{dev}: running (tmux, pid ")
    retry_until(lambda: "astro-bot [dev] tick" in examples.run_py(here, "--logs").ok().out,
                timeout=30)
    assert examples.run_py(here, "--stop").ok().out == f"{dev}: stopped (tmux)\n"
    assert examples.run_py(here, "--status").ok().out == f"{dev}: defined (tmux)\n"
    logs = examples.kstlib(here, "ops", "logs", dev, "--lines", "5").ok().out
    assert "astro-bot: stopped cleanly" in logs  # the graceful stop let it finish


@pytest.mark.containers
def test_container_example_as_its_readme_runs_it(examples: Examples, runtime: str) -> None:
    examples.use(runtime, astro_bot_image(runtime, examples))
    here, prod = examples.container, examples.names["astro-prod"]
    listed = json.loads(examples.kstlib(here, "ops", "list", "--json").ok().out)
    assert any(d["name"] == prod and d["state"] == "defined" for d in listed)

    assert examples.run_py(here).ok().out.startswith(f"{prod}: started (container, pid ")
    assert examples.run_py(here, "--status").ok().out.startswith(
        f"{prod}: running (container, pid ")
    retry_until(lambda: "astro-bot [prod] tick" in examples.kstlib(
        here, "ops", "logs", prod, "--lines", "50").ok().out, timeout=60)
    assert examples.run_py(here, "--stop").ok().out == f"{prod}: stopped (container)\n"
    logs = examples.kstlib(here, "ops", "logs", prod, "--lines", "50").ok().out
    assert "got SIGTERM" in logs and "astro-bot: stopped cleanly" in logs

    # the seed: kstlib ops start astro-prod --image astro-bot:v2 (a local tag, never pulled)
    v2 = IMAGE.replace(":latest", ":v2")
    subprocess.run([runtime, "tag", IMAGE, v2], check=True, capture_output=True, timeout=60)
    try:
        examples.kstlib(here, "ops", "start", prod, "--image", v2).ok()
        assert examples.status(here, prod)["image"] == v2
        examples.kstlib(here, "ops", "stop", prod, "-f").ok()
    finally:
        subprocess.run([runtime, "rmi", v2], capture_output=True, timeout=120)


@pytest.mark.containers
def test_seed_backend_override_runs_the_dev_session_in_the_image(
        examples: Examples, runtime: str, tmux_available) -> None:
    """`kstlib ops start astro-dev --backend container --image astro-bot`, nothing more: the
    image's own command runs the bot (the host's `python3 astro_bot.py` is not carried in),
    with the session's env."""
    image = astro_bot_image(runtime, examples)
    examples.use(runtime)
    here, dev = examples.tmux, examples.names["astro-dev"]
    examples.kstlib(here, "ops", "start", dev, "--backend", "container", "--image", image).ok()
    status = examples.status(here, dev)
    assert (status["backend"], status["state"], status["image"]) == ("container", "running",
                                                                      image)
    assert status["command"] == "python3 /app/astro_bot.py"  # the Containerfile's CMD
    retry_until(lambda: "astro-bot [dev] tick" in examples.kstlib(
        here, "ops", "logs", dev).ok().out, timeout=60)
    examples.kstlib(here, "ops", "stop", dev).ok()
    assert examples.status(here, dev)["backend"] == "tmux"  # back to its config entry
