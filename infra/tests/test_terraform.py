"""The Terraform code parses (python-hcl2), its modules, variables and outputs line up, and it deploys what the manifests expect.

`terraform validate` needs the providers, which cannot be downloaded here; these checks are what can
be verified offline, plus `terraform fmt -check` when the terraform binary is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from infra.tests import natsconf
from tapio_testing import manifests as m
from tapio_testing.natsidentity import make_secrets

TF = m.INFRA / "terraform"
MODULES = {p.name: p for p in sorted((TF / "modules").iterdir()) if p.is_dir()}
ENVIRONMENTS = {p.name: p for p in sorted((TF / "environments").iterdir()) if p.is_dir()}
ALL_DIRS = [*MODULES.values(), *ENVIRONMENTS.values()]
# Resource/data type prefix -> provider (terraform_data is built in).
PROVIDER_OF = {"kind": "kind", "kubernetes": "kubernetes", "helm": "helm", "kustomization": "kustomization",
               "tls": "tls", "random": "random", "http": "http"}  # fmt: skip


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and block labels: "\"x\"" -> "x"."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_dir(directory: Path) -> dict[str, list[Any]]:
    """All blocks of a Terraform directory, merged by block type."""
    merged: dict[str, list[Any]] = {}
    for tf in sorted(directory.glob("*.tf")):
        with tf.open(encoding="utf-8") as f:
            for key, blocks in hcl2.load(f).items():
                if key != "__comments__":
                    merged.setdefault(key, []).extend(blocks)
    return merged


def labelled(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{label: body} of single-label blocks (variable, output, module, provider)."""
    return {
        unquote(label): body for block in blocks for label, body in block.items() if label != "__is_block__"
    }


def typed(blocks: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(type, name): body} of resource or data blocks."""
    return {
        (unquote(t), unquote(n)): body
        for block in blocks
        for t, named in block.items()
        if t != "__is_block__"
        for n, body in named.items()
        if n != "__is_block__"
    }


def source_text(directory: Path) -> str:
    """The code of a directory without comments and descriptions (which may mention other code)."""
    lines = (
        line for tf in sorted(directory.glob("*.tf")) for line in tf.read_text(encoding="utf-8").splitlines()
    )
    return "\n".join(line for line in lines if not line.lstrip().startswith(("#", "description")))


def required_providers(directory: Path) -> dict[str, dict[str, Any]]:
    (terraform,) = load_dir(directory)["terraform"]
    providers = terraform["required_providers"][0].items()
    return {name: {k: unquote(v) for k, v in p.items()} for name, p in providers if name != "__is_block__"}


@pytest.mark.parametrize("tf", sorted(TF.rglob("*.tf")), ids=lambda p: str(p.relative_to(TF)))
def test_file_parses(tf: Path) -> None:
    with tf.open(encoding="utf-8") as f:
        assert isinstance(hcl2.load(f), dict)


def test_layout() -> None:
    assert set(MODULES) == {"cluster", "nats", "tapio"}
    assert set(ENVIRONMENTS) == {"local", "prod"}
    for d in ALL_DIRS:
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (d / name).is_file(), f"{d.relative_to(TF)}/{name}"


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_environment_calls_modules_with_their_variables(env: str) -> None:
    modules = labelled(load_dir(ENVIRONMENTS[env])["module"])
    assert set(modules) == {"cluster", "nats", "tapio"}
    for name, body in modules.items():
        source = (ENVIRONMENTS[env] / unquote(body["source"])).resolve()
        assert source == MODULES[name].resolve(), f"{env}: module {name} source {source}"
        variables = labelled(load_dir(source)["variable"])
        args = set(body) - {"source", "__is_block__", "depends_on", "providers", "count", "for_each"}
        assert args <= set(variables), f"{env}: module {name} gets undeclared {args - set(variables)}"
        required = {v for v, spec in variables.items() if "default" not in spec}
        assert required <= args, f"{env}: module {name} misses required {required - args}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=lambda p: str(p.relative_to(TF)))
def test_references_are_declared(directory: Path) -> None:
    text = source_text(directory)
    blocks = load_dir(directory)
    variables = set(labelled(blocks.get("variable", [])))
    locals_ = {k for block in blocks.get("locals", []) for k in block if k != "__is_block__"}
    resources = set(typed(blocks.get("resource", [])))
    data = set(typed(blocks.get("data", [])))
    assert set(re.findall(r"\bvar\.(\w+)", text)) <= variables
    assert set(re.findall(r"\blocal\.(\w+)", text)) <= locals_
    for kind, name in re.findall(r"(?<![.\w])([a-z]+_[a-z_]+)\.(\w+)\b", text):
        if kind.split("_")[0] in PROVIDER_OF and not kind.startswith(("kubernetes_io", "tls_crt")):
            assert (kind, name) in resources, f"{directory.name}: {kind}.{name} is not a resource here"
    for kind, name in re.findall(r"\bdata\.(\w+)\.(\w+)", text):
        assert (kind, name) in data, f"{directory.name}: data.{kind}.{name}"
    for module, output in re.findall(r"\bmodule\.(\w+)\.(\w+)", text):
        call = labelled(blocks["module"])[module]
        outputs = labelled(load_dir((directory / unquote(call["source"])).resolve())["output"])
        assert output in outputs, f"{directory.name}: module.{module}.{output} is not an output"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=lambda p: str(p.relative_to(TF)))
def test_every_provider_used_is_required(directory: Path) -> None:
    blocks = load_dir(directory)
    kinds = {k for k, _ in typed(blocks.get("resource", []))} | {k for k, _ in typed(blocks.get("data", []))}
    used = {PROVIDER_OF[k.split("_")[0]] for k in kinds if k != "terraform_data"}
    if directory in ENVIRONMENTS.values():
        used |= {p for body in blocks["module"] for b in body.values() for p in required_providers(
            (directory / unquote(b["source"])).resolve())}  # fmt: skip
        used |= set(labelled(blocks.get("provider", [])))
    assert used <= set(required_providers(directory)), (
        f"{directory.name}: {used - set(required_providers(directory))}"
    )


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_environment_pins_terraform_and_providers(env: str) -> None:
    (terraform,) = load_dir(ENVIRONMENTS[env])["terraform"]
    assert unquote(terraform["required_version"]).startswith(">= 1.")
    for name, spec in required_providers(ENVIRONMENTS[env]).items():
        assert re.fullmatch(r"~> \d+\.\d+(\.\d+)?", spec.get("version", "")), f"{env}: {name} is not pinned"
        assert spec["source"].endswith("/" + name)


def test_paths_terraform_reads_exist() -> None:
    """k8s_dir is infra/k8s (environments compute it from path.root); every file read from it exists."""
    for env in ENVIRONMENTS.values():
        assert 'abspath("${path.root}/../../../k8s")' in source_text(env)
        assert (env / "../../../k8s").resolve() == m.K8S.resolve()
        for rel in re.findall(r"\$\{local\.k8s_dir\}/([\w/.-]+)", source_text(env)):
            assert (m.K8S / rel / "kustomization.yaml").is_file(), rel
    for module in MODULES.values():
        for rel in re.findall(r"\$\{var\.k8s_dir\}/([\w/.-]+)", source_text(module)):
            assert (m.K8S / rel).is_file(), rel
        for rel in re.findall(r"\$\{path\.module\}/([\w/.-]+)", source_text(module)):
            assert (module / rel).is_file(), rel


def test_terraform_finds_the_users_of_auth_conf() -> None:
    """modules/nats derives the password list from auth.conf with an RE2 regex; Python's re reads it alike."""
    (locals_,) = load_dir(MODULES["nats"])["locals"][:1]
    expr = locals_["users"]
    literal = re.search(r'regexall\("((?:[^"\\]|\\.)*)"', expr)
    assert literal is not None
    pattern = literal.group(1).encode().decode("unicode_escape")
    auth = (m.BASE / "nats" / "auth.conf").read_text(encoding="utf-8")
    parsed = natsconf.parse_file(m.BASE / "nats" / "auth.conf")["authorization"]["users"]
    assert sorted(re.findall(pattern, auth)) == sorted(u["user"] for u in parsed)


def terraform_clients() -> dict[str, dict[str, str]]:
    """local.clients of modules/nats: Secret nats-client-<id> -> common name and NATS user."""
    (clients,) = [b["clients"] for b in load_dir(MODULES["nats"])["locals"] if "clients" in b]
    return {unquote(k): {f: unquote(v) for f, v in c.items()} for k, c in clients.items()}


def test_secrets_are_those_the_manifests_use() -> None:
    resources = typed(load_dir(MODULES["nats"])["resource"])
    names = set()
    for (kind, _), body in resources.items():
        if kind == "kubernetes_secret":
            name = unquote(body["metadata"][0]["name"])
            keys = terraform_clients() if "${each.key}" in name else {"": None}
            names |= {name.replace("${each.key}", k) for k in keys}
    referenced = {name for d in m.base_docs() if d["kind"] in ("DaemonSet", "Deployment", "StatefulSet")
                  for name, _ in m.secret_refs(d)}  # fmt: skip
    account = m.find(m.base_docs(), "Account", "tapio")["spec"]
    referenced |= {account["tls"]["secret"]["name"], "nats-clients-auth", "nats-operator-passwords"}
    # and the readers' and operators' certificates, which no manifest mounts
    assert names == referenced | {"nats-client-readers", "nats-client-admin"}


def test_terraform_issues_the_client_certificates_of_make_secrets(tmp_path: Path) -> None:
    """One certificate per workload, with the common name and NATS user (DNS SAN) make-secrets.sh gives it."""
    make_secrets(tmp_path)
    script = {}
    for crt in sorted((tmp_path / "clients").glob("*.crt")):
        out = subprocess.run(
            ["openssl", "x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "RFC2253", "-ext", "subjectAltName"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cn = re.search(r"subject=CN=(\S+)", out)
        san = re.search(r"DNS:(\S+)", out)
        assert cn, crt
        assert san, crt
        script[crt.stem] = {"common_name": cn.group(1), "user": san.group(1)}
    assert terraform_clients() == script
    assert "dns_names = [c.user]" in source_text(MODULES["nats"])


def test_helm_values_configure_nats_like_the_statefulset() -> None:
    values = yaml.safe_load((MODULES["nats"] / "values" / "nats.yaml").read_text(encoding="utf-8"))
    config = values["config"]
    assert config["cluster"]["enabled"] is True
    assert config["cluster"]["replicas"] == 3
    assert config["cluster"]["merge"]["name"] == "tapio-nats"
    assert config["nats"]["tls"]["merge"]["verify_and_map"] is True
    assert config["nats"]["tls"]["secretName"] == config["cluster"]["tls"]["secretName"] == "nats-server-tls"
    assert values["tlsCA"] == {"enabled": True, "secretName": "nats-server-tls", "key": "ca.crt"}
    js = config["jetstream"]
    assert natsconf.scalar(js["fileStore"]["maxSize"]) == 10 * 1024**3
    assert natsconf.scalar(js["memoryStore"]["maxSize"]) == 1 * 1024**3
    assert values["promExporter"] == {"enabled": True, "port": 7777}
    assert values["podDisruptionBudget"]["enabled"] is True
    sts = m.find(m.base_docs(), "StatefulSet", "nats-jetstream")
    nats = m.pod_spec(sts)["containers"][0]
    assert values["container"]["merge"]["resources"] == nats["resources"]
    # The same auth.conf (no passwords: the certificates are the identities).
    include = config["merge"]["$include"]
    mount = values["container"]["patch"][0]["value"]
    assert (Path("/etc/nats-config") / include).resolve() == Path(mount["mountPath"]) / "auth.conf"
    volume = values["podTemplate"]["patch"][0]["value"]
    assert volume["name"] == mount["name"] == values["reloader"]["patch"][0]["value"]["name"]
    config_maps = typed(load_dir(MODULES["nats"])["resource"])
    assert (
        unquote(config_maps[("kubernetes_config_map", "auth")]["metadata"][0]["name"])
        == volume["configMap"]["name"]
    )
    assert not [e for e in nats["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert "env" not in values["container"]


@pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason="not installable: terraform (HashiCorp ships it; neither Debian nor PyPI has it)",
)
def test_terraform_fmt() -> None:
    res = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TF)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, f"terraform fmt would change:\n{res.stdout}"
