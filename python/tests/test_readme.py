"""The README's Python examples, run as written: only the addresses and
file names in them are swapped for the test's broker, QUIC listener and
SCION network."""

import pathlib
import re
import subprocess
import sys

from conftest import ROOT, Broker

# What each example prints, in README order.
EXPECTED = [
    "sensors/1 21.5 1",
    "alerts/door open",
    "published over SCION",
    "sensors/2 application/json [('unit', 'C')] [7]",
    "refused: 0x87 not authorized",
]


def server_logs(workdir: pathlib.Path) -> str:
    """The ends of the session's server logs (scion-quic, pocketscion), for a
    failure to show what the servers saw."""
    tails = []
    for name in ("scion-quic.log", "pocketscion.log", "pocketscion.out"):
        path = workdir / name
        if path.exists():
            tails.append(f"--- {name} (end) ---\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(tails)


def readme_examples() -> list:
    text = (ROOT / "README.md").read_text()
    section = text.split("### From Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_python_examples_work(tmp_path, quic_url, scion, certs):
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite sensors/#\ntopic readwrite alerts/#\n"
                   "user alice\ntopic readwrite sensors/#\ntopic readwrite status/#\n")
    broker = Broker(tmp_path, name="readme", extra=f"allow_anonymous true\nacl_file {acl}\n")
    swaps = {
        "tcp://127.0.0.1:1883": broker.url,
        "@127.0.0.1:1883": f"@127.0.0.1:{broker.port}",
        "quic://localhost:14567": quic_url,
        '"ca.pem"': repr(str(certs / "ca.pem")),
        "scion-quic://[2-ff00:0:212,127.0.0.1]:4433": scion["url"],
        '"http://127.0.0.1:48000/"': repr(scion["endhost_api"]),
        '"snap.token"': repr(scion["child_snap_token_file"]),
    }
    examples = readme_examples()
    try:
        assert len(examples) == len(EXPECTED), "a README example without an expected output here"
        for example, expected in zip(examples, EXPECTED):
            code = example
            for placeholder, real in swaps.items():
                code = code.replace(placeholder, real)
            assert code != example, f"nothing of this example points at the test's servers:\n{example}"
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 timeout=60, cwd=pathlib.Path(tmp_path))
            assert run.returncode == 0, f"{example}\n{run.stderr}\n{server_logs(certs.parent)}"
            assert run.stdout.strip() == expected, example
    finally:
        broker.stop()
