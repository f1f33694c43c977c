"""contrib/kubernetes/ checked offline, as `kubectl apply --dry-run` and an
operator would: every resource valid (strict) against the Kubernetes JSON
schemas that kubernetes-validate ships, and every port, probe path, flag
and config file agreeing with the mqttbridge binary. (Here because the
schemas come from PyPI; it needs no broker.)"""

import pathlib
import subprocess
import tomllib
from typing import Any, Dict, List

import kubernetes_validate
import pytest
import yaml

from conftest import ROOT, mqttbridge_binary

MANIFESTS = sorted((ROOT / "contrib" / "kubernetes").glob("*.yaml"))


def resources(path: pathlib.Path) -> List[Dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_there_are_manifests_for_both_proxies() -> None:
    assert [p.name for p in MANIFESTS] == ["r-proxy.yaml", "s-proxy.yaml"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_resource_is_valid_kubernetes(path: pathlib.Path) -> None:
    kinds = []
    for resource in resources(path):
        # Raises ValidationError naming the field (unknown fields too).
        kubernetes_validate.validate(resource, kubernetes_validate.latest_version(), strict=True)
        kinds.append(resource["kind"])
    assert {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"} <= set(kinds)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_ports_probes_flags_and_config_agree_with_the_binary(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    docs = resources(path)
    by_kind: Dict[str, List[Dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    [deployment] = by_kind["Deployment"]
    [config_map] = by_kind["ConfigMap"]
    [secret] = by_kind["Secret"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    mode = next(a for a in args if a in ("r-proxy", "s-proxy", "scion-quic", "scion-udp"))
    binary = mqttbridge_binary()

    # Every flag the container passes exists where it is passed.
    before, after = args[: args.index(mode)], args[args.index(mode) + 1:]
    global_help = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    mode_help = subprocess.run([binary, mode, "--help"], capture_output=True, text=True, check=True).stdout
    for flag in (a for a in before if a.startswith("--")):
        assert flag in global_help, f"{flag} is not a global flag"
    for flag in (a for a in after if a.startswith("--")):
        assert flag in mode_help, f"{flag} is not a flag of {mode}"

    # The config file it mounts checks out, with the secret's files beside it.
    config_path = after[after.index("--config") + 1]
    [(file_name, text)] = config_map["data"].items()
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"]["mountPath"] == config_path and mounts["config"]["subPath"] == file_name
    secret_dir = mounts["secret"]["mountPath"]
    (tmp_path / "secret").mkdir()
    for name, value in secret["stringData"].items():
        (tmp_path / "secret" / name).write_text(value)
    local = tmp_path / file_name
    local.write_text(text.replace(secret_dir, str(tmp_path / "secret")))
    check = subprocess.run([binary, "check-config", mode, str(local)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    config = tomllib.loads(text)

    # Ports: the listener and the admin endpoint are where the pod says.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["admin"] == port_of(config["admin"])
    listener = "grpc" if mode == "s-proxy" else "mqtt"
    assert ports[listener] == port_of(config["listen"])

    # Probes: the admin endpoint's paths, or the gRPC health service.
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        spec = container.get(probe)
        if spec is None:
            continue
        if "httpGet" in spec:
            assert spec["httpGet"]["path"] in ("/readyz", "/healthz"), probe
            assert spec["httpGet"]["port"] in ("admin", ports["admin"]), probe
        else:
            assert spec["grpc"] == {"port": ports["grpc"], "service": "mqtt.MqttRelayService"}, probe
    assert container["readinessProbe"] != container["livenessProbe"]

    # Termination: the pod outlives preStop plus the drain it is configured for.
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace_ms = config.get("shutdown_grace_ms", 10000)
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace_ms / 1000

    # Services send traffic to ports the container names.
    for service in by_kind["Service"]:
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, port
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    [budget] = by_kind["PodDisruptionBudget"]
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
