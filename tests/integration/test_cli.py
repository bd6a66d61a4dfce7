"""The command line: --help, --version, --check-config, bad configuration; the README's
configuration table against the code's."""

import os
import re
import subprocess

from conftest import BRIDGE_BIN


def run(args, env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SINCH_", "MQTT_",
                                                                        "BRIDGE_"))}
    base.update(env)
    return subprocess.run([BRIDGE_BIN] + args, env=base, capture_output=True, text=True,
                          timeout=60)


def test_help_lists_every_setting():
    r = run(["--help"], {})
    assert r.returncode == 0
    for key in ("SINCH_PROJECT_ID", "MQTT_URL", "BRIDGE_RATE_LIMIT", "BRIDGE_CONTACTS"):
        assert key in r.stdout


def test_version():
    r = run(["--version"], {})
    assert r.returncode == 0 and r.stdout.startswith("sinch-bridge ")


def test_bad_configuration_names_the_key_and_hides_secrets():
    r = run([], {"SINCH_PROJECT_ID": "p", "SINCH_APP_ID": "a", "SINCH_KEY_ID": "k",
                 "SINCH_KEY_SECRET": "s3cr3t-value", "BRIDGE_RATE_LIMIT": "fast"})
    assert r.returncode == 1
    assert "BRIDGE_RATE_LIMIT" in r.stderr
    assert "s3cr3t-value" not in r.stderr + r.stdout


def test_check_config_proves_broker_and_app(world):
    sim = world.start_sim()
    bridge = world.bridge()
    r = subprocess.run([BRIDGE_BIN, "--check-config"], env=bridge.environment(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    env = bridge.environment()
    env["SINCH_APP_ID"] = "someone-elses-app"
    r = subprocess.run([BRIDGE_BIN, "--check-config"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "region" in r.stderr
    assert "sim-secret" not in r.stderr + r.stdout
    env = bridge.environment()
    env["MQTT_URL"] = "mqtt://127.0.0.1:9"
    r = subprocess.run([BRIDGE_BIN, "--check-config"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "MQTT" in r.stderr
    assert sim.requests("send") == []


def help_table():
    """{key: (default or None, reloadable)} from `sinch-bridge --help`."""
    out = {}
    for line in run(["--help"], {}).stdout.splitlines():
        m = re.match(r"^  ([A-Z0-9_]+) \((.*)\)$", line)
        if m:
            key, what = m.groups()
            out[key] = [what[len("default: "):] if what.startswith("default: ") else None, False]
            last = key
        elif line.startswith("      ") and "(SIGHUP reloads it)" in line:
            out[last][1] = True
    return {k: tuple(v) for k, v in out.items()}


def readme_table():
    """{key: (default or None, reloadable)} from the README's configuration table."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z0-9_]+)`", cells[0])
        entries = cells[1].split(", ")
        if len(entries) == 1:
            entries = entries * len(names)
        assert len(entries) == len(names), line
        for name, entry in zip(names, entries):
            value = re.match(r"^`([^`]*)`", entry)
            out[name] = (value.group(1) if value else None, "*reload*" in cells[2])
    return out


def test_readme_configuration_table_matches_the_code():
    code, readme = help_table(), readme_table()
    assert len(code) > 40
    assert sorted(readme) == sorted(code)
    for key in code:
        assert readme[key] == code[key], (key, readme[key], code[key])
