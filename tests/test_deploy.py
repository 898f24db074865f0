"""Deployment files: docker-compose.yml's env lands on real settings, and the pieces agree with each other.

No Docker engine here: the compose file is read as YAML, its ${VAR}s filled from .env.example, and the app's
env is fed to the real Settings. `docker-compose config` runs too when the binary is installed (CI installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from kb.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = ("api", "ui")
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err} and bare $VAR; $$ is a literal $.
VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def _env_example() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example: not NAME=value: {line!r}"
        env[name.strip()] = value
    return env


def _compose_vars(text: str) -> set[str]:
    text = text.replace("$$", "")
    return {m.group("braced") or m.group("bare") for m in VAR.finditer(text)}


def _subst(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _subst(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        rest = m.group("rest") or ""
        if name in env and (env[name] != "" or not rest.startswith(":")):
            return env[name]
        if rest.startswith((":-", "-")):
            return rest.split("-", 1)[1]
        raise AssertionError(f"${{{name}}} is not set by .env.example and has no default")

    parts = value.split("$$")
    return "$".join(VAR.sub(one, p) for p in parts)


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return _env_example()


@pytest.fixture(scope="module")
def compose(env: dict[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return dict(_subst(raw, env))


def _app_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    environment = compose["services"][service]["environment"]
    if isinstance(environment, list):  # the NAME=value list form
        environment = dict(item.split("=", 1) for item in environment)
    return {k: "" if v is None else str(v) for k, v in environment.items()}


def _field_for(var: str) -> str:
    assert var.startswith("KB_"), f"{var}: the app only reads KB_* variables"
    return var[len("KB_") :].lower().split("__")[0]


def _flag(args: list[str], name: str) -> str:
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} is not in {args}")


def test_env_example_covers_every_compose_variable() -> None:
    used = _compose_vars(COMPOSE.read_text(encoding="utf-8"))
    declared = set(_env_example())
    assert used, "docker-compose.yml uses no variables?"
    assert not used - declared, f"used by docker-compose.yml but missing from .env.example: {sorted(used - declared)}"
    assert not declared - used, f"in .env.example but unused by docker-compose.yml: {sorted(declared - used)}"


def test_four_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"qdrant", "vllm", "api", "ui"}
    services = compose["services"]
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:")
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert services["api"]["command"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert services["ui"]["command"] == ["ui", "--host", "0.0.0.0", "--port", "8501"]
    for name in ("qdrant", "vllm", "api", "ui"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert "/health" in " ".join(services["vllm"]["healthcheck"]["test"])


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_env_lands_on_real_settings(
    service: str, compose: dict[str, Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app_env = _app_env(compose, service)
    unknown = [v for v in app_env if _field_for(v) not in Settings.model_fields]
    assert not unknown, f"{service}: KB_* variables that no Settings field reads (silently ignored): {unknown}"

    monkeypatch.chdir(tmp_path)  # no stray kb.toml
    for name in [n for n in os.environ if n.startswith("KB_")]:
        monkeypatch.delenv(name)
    for name, value in app_env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()

    # every variable landed with the value compose gives it
    for name, value in app_env.items():
        if "__" in name:
            continue
        actual = getattr(s, _field_for(name))
        if isinstance(actual, SecretStr):
            assert actual.get_secret_value() == value, name
        elif isinstance(actual, Path):
            assert actual == Path(value), name
        elif isinstance(actual, bool | int | float):
            assert actual == type(actual)(value), name
        elif isinstance(actual, list):
            expected = json.loads(value)
            assert len(actual) == len(expected), name
            for got, want in zip(actual, expected, strict=True):
                if isinstance(got, BaseModel):
                    dumped = {k: getattr(got, k) for k in want}
                    dumped = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in dumped.items()}
                    assert dumped == want, name
                else:
                    assert got == want, name
        elif isinstance(actual, dict):
            assert actual == json.loads(value), name
        elif actual is None:
            assert value == "", name
        else:
            assert actual == value, name

    # and the ones that wire the services together say what they must
    assert s.data_dir == Path("/data")
    assert s.qdrant_url == "http://qdrant:6333"
    assert s.qdrant_api_key is not None and s.qdrant_api_key.get_secret_value() == env["QDRANT_API_KEY"]
    assert s.vlm_backend == "openai"
    assert s.vlm_base_url == "http://vllm:8000/v1"
    assert s.vlm_model == env["VLM_MODEL"]
    assert s.vlm_api_key is not None and s.vlm_api_key.get_secret_value() == env["VLLM_API_KEY"]
    assert s.vlm_max_images == int(env["VLM_MAX_IMAGES"])
    assert s.vlm_max_context_tokens == int(env["VLM_MAX_MODEL_LEN"])
    assert s.ui_admin_token is not None
    assert s.api_keys and {k.role for k in s.api_keys} == {"admin", "reader"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_points_at_qdrant_and_vllm(service: str, compose: dict[str, Any]) -> None:
    services = compose["services"]
    app = services[service]
    depends = app["depends_on"]
    assert {"qdrant", "vllm"} <= set(depends), f"{service} must depend on qdrant and vllm"
    assert depends["qdrant"]["condition"] == "service_healthy"

    app_env = _app_env(compose, service)
    qdrant_url, vlm_url = urlsplit(app_env["KB_QDRANT_URL"]), urlsplit(app_env["KB_VLM_BASE_URL"])
    assert (qdrant_url.hostname, qdrant_url.port) == ("qdrant", 6333)
    assert app_env["KB_QDRANT_API_KEY"] == services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"]

    vllm_args = [str(a) for a in services["vllm"]["command"]]
    assert (vlm_url.hostname, vlm_url.port, vlm_url.path) == ("vllm", int(_flag(vllm_args, "--port")), "/v1")
    assert app_env["KB_VLM_API_KEY"] == _flag(vllm_args, "--api-key")
    assert app_env["KB_VLM_MODEL"] == vllm_args[0], "the served model name is the model vLLM was started with"
    limit = json.loads(_flag(vllm_args, "--limit-mm-per-prompt"))
    assert limit == {"image": int(app_env["KB_VLM_MAX_IMAGES"])}, "--limit-mm-per-prompt must equal KB_VLM_MAX_IMAGES"
    assert int(_flag(vllm_args, "--max-model-len")) == int(app_env["KB_VLM_MAX_CONTEXT_TOKENS"])

    # one image store shared by api and ui: the data dir is the same named volume in both
    mounts = {v.split(":")[1]: v.split(":")[0] for v in app["volumes"]}
    assert mounts[app_env["KB_DATA_DIR"]] == "kb-data"


def test_vllm_on_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    vllm = compose["services"]["vllm"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert any(v.endswith(":/root/.cache/huggingface") for v in vllm["volumes"]), "no HF cache volume"
    assert compose["services"]["qdrant"]["volumes"], "qdrant has no storage volume"


def test_dockerfile_matches_install() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    install = (ROOT / "install.sh").read_text(encoding="utf-8")
    block = re.search(r"APT_PACKAGES=\((.*?)\n\)", install, re.S)
    assert block is not None
    apt = {w for line in block.group(1).splitlines() for w in line.split("#")[0].split()}
    missing = apt - {"chromium"} - set(dockerfile.split())  # chromium is for the UI end-to-end test only
    assert not missing, f"install.sh packages missing from the Dockerfile: {sorted(missing)}"
    assert "FROM python:3.11-slim" in dockerfile
    assert re.search(r"pip install .*\"\.\[server,s3\]\"", dockerfile)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0"), "the app must not run as root"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed (CI installs it)")
def test_docker_compose_config(tmp_path: Path) -> None:
    result = subprocess.run(
        ["docker-compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
