"""Every command and Python snippet in README.md runs, as a user would paste them.

Every fenced block marked ``python`` or ``bash``/``sh``/``shell`` is picked up, in README
order, so a new section's blocks are tested without touching this file. A block can opt out
only with a marker comment on the line right above its fence, with its reason:

    <!-- readme-test: skip because ... -->

A few commands cannot run here; :data:`NOT_RUN` lists them with the reason (they are
replaced by a no-op, the rest of their block runs).

How it runs (in a temporary folder, with the project's environment on PATH):

- first what ``make run`` does before serving: ``neurocloud demo --output models/seed``;
- Python blocks run one after the other in one interpreter, as in a user's session (they
  build on each other: the tour's ``model`` and ``X`` are explained later);
- shell blocks run in bash with ``set -e``; a ``neurocloud serve`` line starts its server in
  the background (stopping the one before it, as a user would with Ctrl+C) and waits until
  ``/ping`` answers; every server is stopped at the end. Port 8080 becomes a free port.
- ``make run`` installs ``neurocloud[all]``, not torch and the test-only packages, so those
  are made unimportable (``sys.modules[name] = None`` in a ``sitecustomize``), except for
  the commands of :data:`NEEDS_TORCH`, which the README says need ``neurocloud[torch]``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurocloud.cli import COMMANDS, main
from neurocloud.serve.launcher import free_port

pytestmark = pytest.mark.slow

README = Path(__file__).parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP_MARKER = re.compile(r"^<!--\s*readme-test:\s*skip\b(.*?)-->\s*$")
RUN_LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}

#: commands that cannot run here (matched at the start of a logical shell line)
NOT_RUN = {
    "make run": "creates the environment this test runs in and then serves until Ctrl+C; "
    "its steps, neurocloud demo and neurocloud serve, run here",
    "make test": "runs the whole suite, this test included",
    "docker ": "needs Docker and its daemon",
    "neurocloud deploy": "creates resources in a real AWS account",
    "neurocloud undeploy": "deletes resources in a real AWS account",
}
#: commands that need torch, which make run does not install (the README says so)
NEEDS_TORCH = ("--format sagemaker-pytorch", "--format torch", "opt/ml/model/code/inference.py")
#: installed for the tests, not by make run: unimportable while the README runs
NOT_IN_MAKE_RUN = ["torch", "tritonclient", "skl2onnx", "moto", "sagemaker_inference"]


@dataclass
class Block:
    language: str
    code: str
    line: int
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks to run (python and shell), with their opt-out reasons."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        language = RUN_LANGUAGES.get(opened.group(1).lower())
        if language is None:
            continue  # output, a table, a tree: not code
        marker = SKIP_MARKER.match(lines[start - 1]) if start else None
        skip = marker.group(1).strip() if marker else None
        blocks.append(Block(language, "\n".join(body) + "\n", start + 1, skip))
    return blocks


def logical_lines(script: str) -> list[str]:
    """Shell lines with backslash continuations joined (quoted multi-line strings stay)."""
    return script.replace("\\\n", " ").splitlines()


def shell_script(code: str, port: int) -> str:
    """A block as a bash script: NOT_RUN commands become no-ops, servers go to the background."""
    out = []
    for line in logical_lines(code.replace("8080", str(port))):
        stripped = line.strip()
        reason = next((r for cmd, r in NOT_RUN.items() if stripped.startswith(cmd)), None)
        if reason is not None:
            out.append(f": not run here, {reason!r}")
        elif re.match(r"^(\w+=\S+\s+)*neurocloud serve\b", stripped):
            out.append(f"serve_in_background {port} {stripped.rstrip('&').strip()}")
        else:
            out.append(line)
    return PRELUDE + "\n".join(out) + "\n"


PRELUDE = r"""set -euo pipefail
serve_in_background() {
  local port=$1; shift
  if [ -f "server-$port.pid" ]; then  # the previous server on this port: stop it
    local old; old=$(cat "server-$port.pid"); kill -TERM "$old" 2>/dev/null || true
    while kill -0 "$old" 2>/dev/null; do sleep 0.05; done
  fi
  env "$@" >> "server-$port.log" 2>&1 &
  echo $! > "server-$port.pid"; echo $! >> servers.pids
  python - "$port" <<'EOF'
import sys, time, urllib.request
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/ping", timeout=2):
            break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"no server answered /ping on port {sys.argv[1]}")
        time.sleep(0.05)
EOF
}
"""


# An import hook, not sys.modules[name] = None: SciPy looks torch up in sys.modules.
BLOCKER = """import sys


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


def environment(root: Path, port: int, blocked: list[str]) -> dict[str, str]:
    site = root / f".site-{len(blocked)}"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(blocked)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_", "SAGEMAKER"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(site)
    env["SAGEMAKER_BIND_TO_PORT"] = str(port)
    env["MPLBACKEND"] = "Agg"
    env.pop("NEUROCLOUD_SAGEMAKER_ROOT", None)
    return env


def run(command: list[str], root: Path, env: dict[str, str], what: str) -> str:
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{output[-4000:]}"
    assert "Traceback" not in output, f"{what} printed a traceback:\n{output[-4000:]}"
    return output


# Runs the Python blocks one after the other in one interpreter, sharing their names, as a
# user's session (or a notebook) would: one block path per line in, one status line out.
RUNNER = """import sys, traceback
names = {"__name__": "__main__"}
for path in sys.stdin:
    try:
        code = compile(open(path.strip()).read(), path.strip(), "exec")
        exec(code, names)
        status = 0
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush(); sys.stderr.flush()
    print(f"\\n=== block done {status}", flush=True)
"""


class PythonSession:
    """One interpreter for the README's Python blocks, in the make run environment."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.err = root / "python-session.err"
        self.err_file = self.err.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNER],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err_file,
            text=True,
        )

    def run(self, path: Path, what: str) -> str:
        before = self.err.stat().st_size
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        output = []
        for line in self.process.stdout:
            if line.startswith("=== block done "):
                status = int(line.split()[-1])
                break
            output.append(line)
        else:
            status = -1  # the interpreter exited
        with self.err.open() as err:
            err.seek(before)
            errors = err.read()
        text = "".join(output) + errors
        assert status == 0, f"{what} failed:\n{text[-4000:]}"
        assert "Traceback" not in text, f"{what} printed a traceback:\n{text[-4000:]}"
        return text

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.process.stdout.close()
        self.err_file.close()


def stop_servers(root: Path) -> None:
    pids = root / "servers.pids"
    if not pids.exists():
        return
    for pid in {int(p) for p in pids.read_text().split()}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def fixtures(root: Path) -> None:
    """Files the README's commands assume the user has: a CSV with a ``label`` column."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = [
        ",".join(map(str, x)) + f",{iris.target_names[t]}" for x, t in zip(iris.data, iris.target)
    ]
    (root / "my.csv").write_text("a,b,c,d,label\n" + "\n".join(rows) + "\n")


def test_readme_blocks_are_found_and_every_opt_out_gives_a_reason():
    blocks = readme_blocks(README.read_text())
    languages = [b.language for b in blocks]
    assert languages.count("python") >= 4 and languages.count("bash") >= 8
    for block in blocks:
        assert block.skip is None or block.skip, f"README line {block.line}: skip without reason"
    # the extraction itself: a new block is found, and only the marker opts it out
    sample = (
        "text\n```python\nprint(1)\n```\n<!-- readme-test: skip because X -->\n"
        "```bash\nls\n```\n```\nout\n```\n"
    )
    found = readme_blocks(sample)
    assert [(b.language, b.skip) for b in found] == [("python", None), ("bash", "because X")]
    script = shell_script(
        "neurocloud deploy a \\\n  --b c\nSM=1 neurocloud serve --port 8080 &\n", 1234
    )
    assert (
        ": not run here" in script
        and "serve_in_background 1234 SM=1 neurocloud serve --port 1234" in script
    )


def test_help_lists_every_command_and_so_does_the_readme():
    shown = CliRunner().invoke(main, ["--help"]).output
    listed = re.findall(r"^  (\w+)\s", shown.split("Commands:")[1], flags=re.M)
    assert listed == sorted(COMMANDS)
    line = next(
        x for x in README.read_text().split("\n\n") if x.startswith("Command line: `neurocloud")
    )
    assert set(re.findall(r"\b(\w+)\b", line.split("`")[1])) - {"neurocloud"} == set(COMMANDS)


def test_make_run_installs_the_extras_this_test_assumes():
    import tomllib

    root = README.parent
    makefile = (root / "Makefile").read_text()
    assert 'pip install --quiet -e ".[all]"' in makefile.split("installed-run:")[1].split("\n\n")[0]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["all"] == ["neurocloud[sklearn,plot,onnx,aws,kserve,explain]"]
    test_only = {r.split("[")[0].split(">")[0].split("=")[0] for r in extras["test"][1:]}
    assert {"torch", "tritonclient", "skl2onnx", "moto", "sagemaker-inference"} <= test_only


def test_every_readme_command_and_snippet_runs(tmp_path):
    port = free_port()
    make_run = environment(tmp_path, port, NOT_IN_MAKE_RUN)
    with_torch = environment(tmp_path, port, [n for n in NOT_IN_MAKE_RUN if n != "torch"])
    fixtures(tmp_path)
    run(["neurocloud", "demo", "--output", "models/seed"], tmp_path, make_run, "make run's demo")
    session = PythonSession(tmp_path, make_run)
    ran = []
    try:
        for n, block in enumerate(readme_blocks(README.read_text())):
            where = f"README block at line {block.line}"
            if block.skip:
                continue
            if block.language == "python":
                script = tmp_path / f"block-{n}.py"
                script.write_text(block.code.replace("8080", str(port)))
                session.run(script, where)
            else:
                env = with_torch if any(c in block.code for c in NEEDS_TORCH) else make_run
                script = tmp_path / f"block-{n}.sh"
                script.write_text(shell_script(block.code, port))
                run(["bash", str(script)], tmp_path, env, where)
            ran.append(block.line)
    finally:
        session.close()
        stop_servers(tmp_path)
    assert len(ran) >= 12
    # what the README says the blocks produce
    assert (tmp_path / "models/tour/model.json").is_file()
    assert (tmp_path / "models/iris-loss.png").is_file() and (tmp_path / "ig.png").is_file()
    assert (tmp_path / "seed.onnx").is_file() and (tmp_path / "ml/model/model.json").is_file()
