"""compose/: the Dockerfile, the compose files, bridge.env.example and the systemd unit, checked
against the code so that they cannot drift from it.

No Docker engine runs on the project's machine (the `docker` client is there, without compose
or buildx, and cannot build), so nothing here builds an image or starts a container. What is
checked instead: every YAML file parses; every variable the compose files, the env files and
the unit give the bridge is a key that `sinch-bridge --help` lists, and the bridge accepts their
values; bridge.env.example lists every key with its default; the files the compose files name
exist; every Debian package the Dockerfile installs exists, and the runtime stage installs the
package of every library the built programs link; the unit has its keys and passes
`systemd-analyze verify`. Only loopback is touched: the bridge is pointed at a closed port."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import BRIDGE_BIN, SIM_BIN, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
COMPOSE_FILES = sorted(COMPOSE.glob("docker-compose*.yml"))
EXAMPLE = COMPOSE / "bridge.env.example"
UNIT = COMPOSE / "sinch-bridge.service"
DOCKERFILE = COMPOSE / "Dockerfile"
OURS = ("SINCH_", "MQTT_", "BRIDGE_")  # the prefixes the bridge claims (config.c, is_ours)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(extra)
    return env


def help_keys():
    """{name: {"default": str or None, "derived": bool, "secret": bool}} from --help."""
    out = subprocess.run([BRIDGE_BIN, "--help"], env=clean_env(), capture_output=True,
                         text=True, timeout=30, check=True).stdout.splitlines()
    keys = {}
    for i, line in enumerate(out):
        m = re.match(r"^  ([A-Z][A-Z0-9_]+) \((required|no default|default: (.*))\)$", line)
        if m:
            default = m.group(3)
            keys[m.group(1)] = {
                "default": default,
                # a default computed from other keys is shown as a pattern, not a value
                "derived": default is not None and "<" in default,
                "secret": i + 1 < len(out) and "[secret]" in out[i + 1],
            }
    assert len(keys) > 30, "--help changed its format: %r" % out[:12]
    return keys


KEYS = help_keys()


def env_lines(path):
    """[(line number, commented, key, value)] of a KEY=value file; '#KEY=' is commented out."""
    found = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.match(r"^(#?)([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            found.append((n, m.group(1) == "#", m.group(2), m.group(3)))
        else:
            assert line == "" or line.startswith("# ") or line == "#", \
                "%s:%d: neither KEY=value, #KEY=value nor a '# ' comment: %r" % (path, n, line)
    return found


def load_compose(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), path
    return doc


def as_dict(environment):
    """compose's environment: a mapping, or a list of KEY=value."""
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return dict(environment or {})


def interpolated_default(text):
    """'${X:-bridge.env}' -> 'bridge.env', the value compose uses when X is not set."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)


def env_files(service):
    files = service.get("env_file") or []
    files = [files] if isinstance(files, (str, dict)) else files
    return [interpolated_default(f["path"] if isinstance(f, dict) else f) for f in files]


def runs_bridge_image(service):
    build = service.get("build") or {}
    return (isinstance(build, dict) and build.get("dockerfile") == "compose/Dockerfile") or \
        str(service.get("image", "")).startswith("sinch-bridge")


def bridge_services():
    """[(file, name, service)] of every service that runs our image."""
    return [(path, name, svc) for path in COMPOSE_FILES
            for name, svc in load_compose(path)["services"].items() if runs_bridge_image(svc)]


# The example leaves these out (required, or secrets); the environment supplies them. Sinch's
# URLs point at loopback too, although the broker, checked first, already stops the run.
REQUIRED = {"SINCH_PROJECT_ID": "p", "SINCH_APP_ID": "a", "SINCH_KEY_ID": "k",
            "SINCH_KEY_SECRET": "s", "SINCH_API_URL": "http://127.0.0.1:9",
            "SINCH_AUTH_URL": "http://127.0.0.1:9/oauth2/token"}


def check_config(config_file, **env):
    """Runs --check-config on the file with the broker on a closed loopback port: exit 1 with an
    MQTT complaint means every setting was accepted (the broker is checked after them, and
    before Sinch is called at all)."""
    closed = "mqtt://127.0.0.1:%d" % free_port()
    r = subprocess.run([BRIDGE_BIN, "--check-config", "--config", str(config_file)],
                       env=clean_env(**dict(env, MQTT_URL=closed)), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("sinch-bridge: MQTT:"), \
        "%s: settings refused: %s" % (config_file, r.stderr.strip())


# ---- YAML and compose files ----

def test_every_yaml_file_parses():
    files = sorted(COMPOSE.glob("*.yml")) + sorted(COMPOSE.glob("*.yaml"))
    assert COMPOSE / "docker-compose.yml" in files and COMPOSE / "docker-compose.scale.yml" in files
    for path in files:
        with open(path) as f:
            assert yaml.safe_load(f), "%s is empty" % path


def test_compose_files_name_only_existing_files():
    for path in COMPOSE_FILES:
        for name, svc in load_compose(path)["services"].items():
            build = svc.get("build")
            if isinstance(build, dict):
                context = (COMPOSE / build.get("context", ".")).resolve()
                assert (context / build.get("dockerfile", "Dockerfile")).is_file(), (path, name)
            for volume in svc.get("volumes", []):
                source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
                if source.startswith("."):
                    assert (COMPOSE / source).exists(), "%s: %s mounts missing %s" % (
                        path.name, name, source)
            for env_file in env_files(svc):
                # the user makes bridge.env from the .example; sim.env is committed as it is
                assert (COMPOSE / env_file).is_file() or \
                    (COMPOSE / (env_file + ".example")).is_file(), (path.name, name, env_file)


def test_compose_gives_the_bridge_only_its_own_keys_and_no_secret():
    services = bridge_services()
    assert len(services) >= 5  # bridge and sinch-sim; three bridges in the scale file
    for path, name, svc in services:
        for key in as_dict(svc.get("environment")):
            assert key in KEYS, "%s: %s sets %s, which --help does not list" % (
                path.name, name, key)
            assert not KEYS[key]["secret"], "%s: %s puts the secret %s inline" % (
                path.name, name, key)
        for env_file in env_files(svc):
            target = COMPOSE / env_file
            target = target if target.is_file() else COMPOSE / (env_file + ".example")
            for n, _, key, _ in env_lines(target):
                assert key in KEYS, "%s:%d: %s is not a key --help lists" % (target, n, key)


def test_compose_interpolation_never_uses_a_bridge_prefix():
    """A variable like ${BRIDGE_ENV_FILE} would be exported by users, and the bridge refuses an
    unknown BRIDGE_ name in its environment: compose's own variables keep clear of ours."""
    for path in COMPOSE_FILES:
        for name in re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", path.read_text()):
            assert not name.startswith(OURS) or name in KEYS, "%s: ${%s}" % (path.name, name)


def test_scaled_bridges_share_a_group_but_nothing_else():
    bridges = [svc for path, name, svc in bridge_services()
               if path.name == "docker-compose.scale.yml"]
    assert len(bridges) == 3
    envs = [as_dict(svc["environment"]) for svc in bridges]
    groups = {env.get("BRIDGE_SHARE_GROUP") for env in envs}
    assert len(groups) == 1 and None not in groups, "not one group: %s" % groups
    assert len({env.get("MQTT_CLIENT_ID") for env in envs}) == 3, "two bridges share a session"
    volumes = [v.split(":")[0] for svc in bridges for v in svc["volumes"]]
    assert len(set(volumes)) == 3, "two bridges share a store: %s" % volumes


def test_bridge_accepts_the_compose_settings():
    for path, name, svc in bridge_services():
        if svc.get("profiles"):
            continue  # sinch-sim: same image, another program
        check_config(EXAMPLE, **dict(REQUIRED, **as_dict(svc.get("environment"))))
    check_config(COMPOSE / "sim.env")  # its Sinch URLs are loopback: kept, to be checked


# ---- bridge.env.example ----

def test_env_example_lists_every_key_with_its_default():
    lines = env_lines(EXAMPLE)
    names = [key for _, _, key, _ in lines]
    dupes = {k for k in names if names.count(k) > 1}
    assert not dupes, "listed twice: %s" % sorted(dupes)
    assert not set(KEYS) - set(names), "missing from bridge.env.example: %s" % sorted(
        set(KEYS) - set(names))
    assert not set(names) - set(KEYS), "not keys of --help: %s" % sorted(set(names) - set(KEYS))
    text = EXAMPLE.read_text().splitlines()
    for n, commented, key, value in lines:
        k = KEYS[key]
        literal = k["default"] is not None and not k["derived"] and not k["secret"]
        assert text[n - 2].startswith("# "), "%s:%d: %s has no comment above it" % (
            EXAMPLE.name, n, key)
        if literal:
            assert not commented, "%s:%d: %s has a default: set it, uncommented" % (
                EXAMPLE.name, n, key)
            assert value == k["default"], "%s:%d: %s=%s, but its default is %s" % (
                EXAMPLE.name, n, key, value, k["default"])
        else:
            assert commented, "%s:%d: %s has no default or is a secret: comment it out" % (
                EXAMPLE.name, n, key)


def test_bridge_accepts_the_env_example():
    check_config(EXAMPLE, **REQUIRED)


# ---- Dockerfile ----

def dockerfile_stages():
    """[(FROM line, [instructions])], continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        else:
            stages[-1][1].append(line)
    return stages


def apt_packages(instructions):
    packages = []
    for line in instructions:
        for command in re.findall(r"apt-get install ([^&;]*)", line):
            packages += [word for word in command.split() if not word.startswith("-")]
    return packages


def test_dockerfile_shape():
    stages = dockerfile_stages()
    assert [s[0].split()[1] for s in stages] == ["debian:12", "debian:12-slim"]
    runtime = stages[-1][1]
    joined = "\n".join(runtime)
    assert re.search(r"^USER (?!0|root)", joined, re.M), "the runtime stage runs as root"
    assert re.search(r"^VOLUME .*/var/lib/sinch-bridge", joined, re.M)
    assert re.search(r"^EXPOSE 8080$", joined, re.M)
    assert re.search(r"^HEALTHCHECK .*/healthz", joined, re.M)
    assert re.search(r"^ENTRYPOINT .*sinch-bridge", joined, re.M)
    assert "/sinch-sim" in joined, "the image must carry sinch-sim for the sim profile"
    env = dict(re.findall(r"([A-Z_]+)=(\S+)", " ".join(l for l in runtime if l.startswith("ENV "))))
    assert env.get("BRIDGE_DATA_DIR") == "/var/lib/sinch-bridge"
    assert env.get("BRIDGE_LISTEN") == "0.0.0.0:8080"
    assert set(env) <= set(KEYS), "ENV sets keys --help does not list"


def test_dockerfile_build_stage_installs_what_ci_installs():
    deps = (ROOT / ".ci" / "install-deps").read_text()
    for package in apt_packages(dockerfile_stages()[0][1]):
        assert re.search(r"(^|\s)%s(\s|$)" % re.escape(package), deps, re.M), \
            "%s is built with in the image but not in .ci/install-deps" % package


def apt_lists_present():
    lists = Path("/var/lib/apt/lists")
    return shutil.which("apt-cache") and lists.is_dir() and any(lists.glob("*_Packages*"))


@pytest.mark.skipif(not apt_lists_present(),
                    reason="no apt package lists here (run apt-get update) to look names up in")
def test_dockerfile_packages_exist_in_debian():
    packages = [p for _, instructions in dockerfile_stages() for p in apt_packages(instructions)]
    assert len(packages) > 10
    # One call for all (each call reads every list); it exits 0 when only some are found.
    r = subprocess.run(["apt-cache", "show"] + packages, capture_output=True, text=True)
    found = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    assert r.returncode == 0 and found == set(packages), \
        "not Debian packages here: %s (%s)" % (sorted(set(packages) - found), r.stderr.strip())


LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"  # /sbin is not in every user's PATH


def package_of(soname):
    """The Debian package that ships a shared library, as installed on this machine."""
    out = subprocess.run([LDCONFIG, "-p"], capture_output=True, text=True).stdout
    m = re.search(r"^\s*%s \(.*\) => (\S+)$" % re.escape(soname), out, re.M)
    assert m, "%s is not installed here" % soname
    path = os.path.realpath(m.group(1))
    for candidate in (path, re.sub(r"^/usr/lib/", "/lib/", path),
                      re.sub(r"^/lib/", "/usr/lib/", path)):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0]
    raise AssertionError("no package ships %s" % path)


@pytest.mark.skipif(not (shutil.which("dpkg") and shutil.which("readelf")
                         and os.path.exists(LDCONFIG)),
                    reason="needs dpkg, readelf and ldconfig to map libraries to packages")
def test_runtime_stage_installs_every_linked_library():
    """A new library dependency of the code must reach the slim image too."""
    runtime = set(apt_packages(dockerfile_stages()[-1][1])) | {"libc6"}  # libc6: in every image
    for binary in (BRIDGE_BIN, SIM_BIN):
        dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                                 check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
        if any(n.startswith(("libasan", "libubsan", "libtsan")) for n in needed):
            # A sanitizer build links every library it is given (no --as-needed), libcap and
            # libanl included; the image carries a release build.
            pytest.skip("a sanitizer build: its libraries are not the image's")
        for soname in needed:
            assert package_of(soname) in runtime, "%s needs %s (package %s), which the " \
                "runtime stage does not install" % (os.path.basename(binary), soname,
                                                    package_of(soname))


@pytest.mark.skipif(not shutil.which("hadolint"), reason="hadolint is not installed")
def test_hadolint():
    r = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- systemd unit ----

def parse_unit(path):
    """{section: {key: [values]}}; systemd allows a key more than once, so no configparser."""
    sections, current = {}, None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None and "=" in line, "%s:%d: %r" % (path.name, n, line)
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value):
    m = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert m, value
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def test_unit_has_its_keys():
    unit = parse_unit(UNIT)
    u, s = unit["Unit"], unit["Service"]
    one = {k: v[-1] for k, v in s.items()}  # the last one wins, as in systemd
    for want in ("network-online.target", "mosquitto.service"):
        assert want in " ".join(u.get("After", [])), "After= lacks " + want
    assert "network-online.target" in " ".join(u.get("Wants", []))
    assert one["ExecStart"].split()[0] == "/usr/local/bin/sinch-bridge"
    assert "/etc/sinch-bridge/bridge.env" in one["ExecStart"] + one.get("EnvironmentFile", "")
    assert "HUP" in one["ExecReload"]
    assert one["Restart"] == "on-failure"
    assert seconds(one["TimeoutStopSec"]) > 12, "the bridge's stop takes up to 10 s + 2 s"
    assert one["StateDirectory"] == "sinch-bridge"
    assert one.get("DynamicUser") == "yes" or one.get("User") not in (None, "", "root", "0")
    for key, want in (("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                      ("NoNewPrivileges", "yes")):
        assert one.get(key) == want, "%s=%s" % (key, one.get(key))
    assert one.get("ProtectHome") in ("yes", "read-only", "tmpfs")
    environment = dict(item.split("=", 1) for value in s.get("Environment", [])
                       for item in value.split())
    assert environment.get("BRIDGE_DATA_DIR") == "/var/lib/sinch-bridge"
    assert set(environment) <= set(KEYS), "Environment= sets keys --help does not list"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_unit_passes_systemd_analyze_verify():
    """verify fails on a missing ExecStart binary, so the copy points at the one just built; it
    only warns about unknown keys and bad values, so any line about the unit fails too."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / UNIT.name
        copy.write_text(UNIT.read_text().replace("/usr/local/bin/sinch-bridge",
                                                 os.path.abspath(BRIDGE_BIN)))
        r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                           text=True, timeout=60)
        complaints = [l for l in (r.stdout + r.stderr).splitlines() if UNIT.name in l]
        assert r.returncode == 0 and not complaints, r.stdout + r.stderr
