"""The deployment files agree with the code and keep their promises.

Compose variables are real settings; every image is pinned; the gateway is reached only
through the TLS proxy, published on loopback; secrets come from files.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from gateway.settings import Settings, environment_variables
from storage import open_store

ROOT = Path(__file__).resolve().parents[2]
PROXY = "tls-proxy"
PROXY_CONFIG = ROOT / "deploy" / "tls-proxy" / "default.conf"
MAKE_CERT = ROOT / "deploy" / "tls" / "make-cert.sh"
WITH_SECRETS = ROOT / "deploy" / "gateway" / "with-secrets.sh"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def _ehrgate_variables(compose: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for service in compose["services"].values():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for name, value in environment.items():
            if name.startswith("EHRGATE_"):
                found[name] = str(value)
    return found


def test_every_ehrgate_variable_in_compose_is_a_setting(compose: dict[str, Any]) -> None:
    variables = _ehrgate_variables(compose)
    assert variables, "the compose file configures the gateway through EHRGATE_* variables"
    unknown = set(variables) - environment_variables()
    assert not unknown, f"not settings: {sorted(unknown)}"


def test_every_ehrgate_variable_in_the_dockerfile_is_a_setting() -> None:
    names = set(re.findall(r"\b(EHRGATE_[A-Z_]+)=", (ROOT / "Dockerfile").read_text()))
    assert names
    assert names <= environment_variables()


def test_compose_settings_validate(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _ehrgate_variables(compose).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert [url.split(":", 1)[0] for url in settings.store_urls] == ["s3", "ipfs+http"]
    # The storage package accepts every URL and parameter (nothing is contacted).
    store = open_store(settings.store_urls, write_quorum=settings.write_quorum, check=False)
    store.close()


def test_only_the_tls_proxy_is_published_and_only_on_loopback(compose: dict[str, Any]) -> None:
    published = {name: svc["ports"] for name, svc in compose["services"].items() if "ports" in svc}
    assert list(published) == [PROXY]
    assert all(str(port).startswith("127.0.0.1:") for port in published[PROXY])
    for service in compose["services"].values():
        assert service.get("network_mode") in (None, "none"), "no service shares the host network"


def test_kubo_runs_a_private_swarm(compose: dict[str, Any]) -> None:
    kubo = compose["services"]["kubo"]
    assert "ports" not in kubo
    assert kubo["environment"]["LIBP2P_FORCE_PNET"] == "1"
    script_mount = next(v for v in kubo["volumes"] if "container-init.d" in v)
    script = (ROOT / script_mount.split(":", 1)[0]).read_text()
    assert "ipfs bootstrap rm --all" in script
    assert "swarm.key" in script
    assert "Swarm.AddrFilters" in script
    assert '"/ip4/64.0.0.0/ipcidr/2"' in script  # public space is filtered
    assert "/ip4/10." not in script  # private space is not


# --- images -------------------------------------------------------------------------------

_PINNED = re.compile(r"^[^\s@]+?(?::(?P<tag>\w[\w.-]{0,127}))?(?:@sha256:[0-9a-f]{64})?$")


def _is_pinned(image: str) -> bool:
    match = _PINNED.match(image)
    if match is None:
        return False
    tag = match.group("tag")
    return "@sha256:" in image or (tag is not None and tag != "latest")


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("postgres:16.4-alpine3.20", True),
        ("minio/minio@sha256:" + "a" * 64, True),
        ("postgres", False),
        ("postgres:latest", False),
        ("localhost:5000/postgres", False),
    ],
)
def test_the_pin_rule(image: str, pinned: bool) -> None:
    assert _is_pinned(image) is pinned


def test_every_compose_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "image" in service, f"{name} names its image (a built one gets a version tag)"
        assert _is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"


def test_the_built_image_is_tagged_with_the_project_version(compose: dict[str, Any]) -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    built = {name: svc["image"] for name, svc in compose["services"].items() if "build" in svc}
    assert built["gateway"] == f"ehrgate:{version}"
    assert all(image.endswith(f":{version}") for image in built.values()), built


def test_every_dockerfile_base_image_is_pinned() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert bases
    assert all(_is_pinned(base) for base in bases), bases


# --- TLS ----------------------------------------------------------------------------------


def _directives(config: str, name: str) -> list[str]:
    """The arguments of every `name ...;` directive of an nginx configuration."""
    text = re.sub(r"#[^\n]*", "", config)
    return [m.strip() for m in re.findall(rf"(?:^|[;{{}}\s]){name}\s+([^;{{}}]*);", text)]


def test_the_gateway_is_reached_only_through_the_tls_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy = services[PROXY]
    assert proxy["image"].startswith("nginx:")
    assert (
        "./deploy/tls-proxy/default.conf:/etc/nginx/conf.d/default.conf:ro" in (proxy["volumes"])
    ), "the configuration replaces the image's default (plain HTTP) server"
    config = PROXY_CONFIG.read_text()
    listens = _directives(config, "listen")
    assert listens
    assert all(listen.split()[1:].count("ssl") == 1 for listen in listens), listens
    listening = {int(listen.split()[0].rsplit(":", 1)[-1]) for listen in listens}
    for port in proxy["ports"]:
        assert int(str(port).rsplit(":", 1)[1]) in listening
    assert _directives(config, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    # The proxy forwards to the gateway's own port, naming the client for the rate limits.
    gateway = services["gateway"]
    assert _directives(config, "set") == [
        f"$gateway http://gateway:{gateway['environment']['EHRGATE_PORT']}"
    ]
    assert _directives(config, "proxy_pass") == ["$gateway"]
    assert "X-Forwarded-For $remote_addr" in _directives(config, "proxy_set_header")
    assert "ports" not in gateway


def test_the_certificate_comes_from_the_tls_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy, cert = services[PROXY], services["tls-cert"]
    config = PROXY_CONFIG.read_text()
    mount = next(v for v in proxy["volumes"] if v.startswith("tls:"))
    assert mount.endswith(":ro")
    target = mount.split(":")[1]
    assert _directives(config, "ssl_certificate") == [f"{target}/tls.crt"]
    assert _directives(config, "ssl_certificate_key") == [f"{target}/tls.key"]
    assert "tls:/tls" in cert["volumes"]
    assert proxy["depends_on"]["tls-cert"]["condition"] == "service_completed_successfully"
    assert any(v.endswith(":/supplied:ro") for v in cert["volumes"])
    assert cert["network_mode"] == "none"


def test_the_gateway_trusts_exactly_the_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    address = services[PROXY]["networks"]["edge"]["ipv4_address"]
    assert services["gateway"]["environment"]["EHRGATE_TRUSTED_PROXIES"] == address
    (subnet,) = (entry["subnet"] for entry in compose["networks"]["edge"]["ipam"]["config"])
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert ipaddress.ip_network(subnet).is_private


def test_the_backends_are_on_an_internal_network_only(compose: dict[str, Any]) -> None:
    assert compose["networks"]["backend"]["internal"] is True
    for name in ("postgres", "minio", "minio-bucket", "kubo"):
        assert compose["services"][name]["networks"] == ["backend"], name
    assert sorted(compose["services"]["gateway"]["networks"]) == ["backend", "edge"]


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


def _make_cert(supplied: Path, out: Path, names: str | None = None) -> str:
    environment = {"PATH": "/usr/bin:/bin", "TLS_IN": str(supplied), "TLS_OUT": str(out)}
    if names is not None:
        environment["TLS_SERVER_NAMES"] = names
    result = subprocess.run(
        ["/bin/sh", str(MAKE_CERT)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _handshake(cert: Path, key: Path, hostname: str) -> None:
    """A TLS handshake against the pair, verified by a client that trusts only `cert`."""
    import socket
    import threading

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server.wrap_socket(right, server_side=True) as tls:
                tls.sendall(tls.recv(5))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(left, server_hostname=hostname) as tls:
            tls.sendall(b"hello")
            assert tls.recv(5) == b"hello"
    finally:
        thread.join(timeout=10)
    assert not errors, errors


def test_make_cert_and_compose_default_to_the_same_names(compose: dict[str, Any]) -> None:
    in_compose = compose["services"]["tls-cert"]["environment"]["TLS_SERVER_NAMES"]
    default = re.fullmatch(r"\$\{TLS_SERVER_NAMES:-([^}]+)\}", in_compose)
    assert default is not None
    assert f"names=${{TLS_SERVER_NAMES:-{default.group(1)}}}" in MAKE_CERT.read_text()


@needs_openssl
def test_make_cert_makes_a_self_signed_certificate_once(tmp_path: Path) -> None:
    supplied, out = tmp_path / "supplied", tmp_path / "tls"
    supplied.mkdir()
    out.mkdir()
    assert "made a self-signed certificate" in _make_cert(supplied, out)
    assert (out / "tls.key").stat().st_mode & 0o777 == 0o600
    for hostname in ("localhost", "127.0.0.1"):
        _handshake(out / "tls.crt", out / "tls.key", hostname)
    first = (out / "tls.crt").read_bytes()
    assert "keeping" in _make_cert(supplied, out)
    assert (out / "tls.crt").read_bytes() == first
    assert "made a self-signed certificate" in _make_cert(supplied, out, "ehr.example")
    _handshake(out / "tls.crt", out / "tls.key", "ehr.example")


@needs_openssl
def test_make_cert_prefers_a_supplied_certificate(tmp_path: Path) -> None:
    made, supplied, out = tmp_path / "made", tmp_path / "supplied", tmp_path / "tls"
    for directory in (made, supplied, out):
        directory.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    _make_cert(empty, made, "ehr.hospital.example")
    (supplied / "tls.crt").write_bytes((made / "tls.crt").read_bytes())
    (supplied / "tls.key").write_bytes((made / "tls.key").read_bytes())
    _make_cert(empty, out)  # a self-signed one first; the supplied one then replaces it
    assert "using the supplied certificate" in _make_cert(supplied, out)
    assert (out / "tls.crt").read_bytes() == (supplied / "tls.crt").read_bytes()
    assert not (out / "self-signed").exists()
    _handshake(out / "tls.crt", out / "tls.key", "ehr.hospital.example")


@needs_openssl
def test_make_cert_refuses_a_key_that_is_not_the_certificates(tmp_path: Path) -> None:
    one, other, supplied = tmp_path / "one", tmp_path / "other", tmp_path / "supplied"
    empty = tmp_path / "empty"
    for directory in (one, other, supplied, empty):
        directory.mkdir()
    _make_cert(empty, one)
    _make_cert(empty, other)
    (supplied / "tls.crt").write_bytes((one / "tls.crt").read_bytes())
    (supplied / "tls.key").write_bytes((other / "tls.key").read_bytes())
    result = subprocess.run(
        ["/bin/sh", str(MAKE_CERT)],
        env={"PATH": "/usr/bin:/bin", "TLS_IN": str(supplied), "TLS_OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "is not the key of" in result.stderr


# --- secrets ------------------------------------------------------------------------------

_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PASSPHRASE|(^|_)KEY($|_)|ACCESS_KEY")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def test_no_secret_is_an_environment_value(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for variable, value in _environment(service).items():
            if _SECRET_NAME.search(variable):
                assert variable.endswith("_FILE"), f"{name}: {variable} is given as a value"
            # Nothing is taken from the host's environment either, except the TLS names.
            assert "${" not in value or variable == "TLS_SERVER_NAMES", f"{name}: {variable}"
    url = compose["services"]["gateway"]["environment"]["EHRGATE_DATABASE_URL"]
    assert re.match(r"^[^:]+://[^:@/]+@", url), "the database URL carries no password"


def test_secrets_are_files_mounted_where_they_are_read(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    assert set(declared) == {"postgres_password", "minio_root_user", "minio_root_password"}
    assert all(set(secret) == {"file"} for secret in declared.values())
    services = compose["services"]
    for name, service in services.items():
        assert set(service.get("secrets", [])) <= set(declared), name
        for variable, value in _environment(service).items():
            if variable.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in service["secrets"], f"{name}: {variable} names {value}"
    postgres = _environment(services["postgres"])
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    minio = _environment(services["minio"])
    assert {minio["MINIO_ROOT_USER_FILE"], minio["MINIO_ROOT_PASSWORD_FILE"]} == {
        "minio_root_user",
        "minio_root_password",
    }
    # The gateway reads its secrets in its entry point; each one it reads is mounted.
    gateway = services["gateway"]
    mount = next(v for v in gateway["volumes"] if v.startswith("./deploy/gateway/"))
    assert gateway["entrypoint"] == ["/bin/sh", mount.split(":")[1]]
    script = WITH_SECRETS.read_text()
    assert set(re.findall(r"secret (\w+)\)", script)) == set(gateway["secrets"])
    assert 'exec "$@"' in script
    bucket = services["minio-bucket"]
    command = " ".join(bucket["entrypoint"])
    for secret in bucket["secrets"]:
        assert f"/run/secrets/{secret}" in command


def test_the_gateway_entry_point_exports_the_secrets(tmp_path: Path) -> None:
    # The script is run as it is in the container, with its secrets directory redirected.
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, value in {
        "postgres_password": "pg-secret",
        "minio_root_user": "ehrgate",
        "minio_root_password": "minio-secret",
    }.items():
        (secrets / name).write_text(value + "\n")
    script = tmp_path / "with-secrets.sh"
    script.write_text(WITH_SECRETS.read_text().replace("/run/secrets/", f"{secrets}/"))
    result = subprocess.run(
        [
            "/bin/sh",
            str(script),
            "/bin/sh",
            "-c",
            'printf "%s|%s|%s" "$PGPASSWORD" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"',
        ],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "pg-secret|ehrgate|minio-secret"
    (secrets / "minio_root_password").write_text("")
    failed = subprocess.run(
        ["/bin/sh", str(script), "true"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode != 0
    assert "minio_root_password is missing or empty" in failed.stderr


def test_make_secrets_creates_each_secret_once(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    script = ROOT / "deploy" / "make-secrets.sh"
    run = ["/bin/sh", str(script), str(directory)]
    subprocess.run(run, env={"PATH": "/usr/bin:/bin"}, check=True, capture_output=True)
    assert directory.stat().st_mode & 0o777 == 0o700
    first = {path.name: path.read_text() for path in directory.iterdir()}
    assert set(first) == {"postgres_password", "minio_root_user", "minio_root_password"}
    assert re.fullmatch(r"[0-9a-f]{48}\n", first["postgres_password"])
    assert first["postgres_password"] != first["minio_root_password"]
    (directory / "postgres_password").chmod(0o600)  # as a stricter umask would leave it
    subprocess.run(run, env={"PATH": "/usr/bin:/bin"}, check=True, capture_output=True)
    assert {path.name: path.read_text() for path in directory.iterdir()} == first
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in directory.iterdir())


def test_the_replicas_profile_adds_two_gateways_like_the_first(compose: dict[str, Any]) -> None:
    services = compose["services"]
    first = services["gateway"]
    assert "profiles" not in first
    for name in ("gateway-2", "gateway-3"):
        replica = services[name]
        assert replica["profiles"] == ["replicas"]
        # The same settings, keys volume and secrets: one deployment, one ledger.
        for key in ("image", "environment", "volumes", "secrets", "entrypoint", "command"):
            assert replica[key] == first[key], (name, key)
        # Built once by the first gateway, which alone makes the keys on a first start.
        assert "build" not in replica
        assert replica["depends_on"] == {"gateway": {"condition": "service_healthy"}}
        # Reached only through the TLS proxy, under the first gateway's name.
        assert "ports" not in replica
        assert replica["networks"] == {"edge": {"aliases": ["gateway"]}, "backend": {}}
    assert first["environment"]["EHRGATE_DATABASE_URL"].startswith("postgresql")
    settings = {
        k.removeprefix("EHRGATE_").lower(): v
        for k, v in first["environment"].items()
        if k.startswith("EHRGATE_")
    }
    assert Settings.model_validate(settings).shared_auth_state
