"""The command line: --help, --version, --check-config, bad configuration."""

import os
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
