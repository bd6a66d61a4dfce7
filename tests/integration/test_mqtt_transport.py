"""How the bridge reaches the broker: TLS (CA, client certificate), username and password,
websockets, and shared subscriptions that split commands between bridges."""

import json
import os
import subprocess

from conftest import Broker, free_port, wait_until, wait_port


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        extra = []
        if ext:
            with open(os.path.join(d, name + ".ext"), "w") as f:
                f.write(ext + "\n")
            extra = ["-extfile", name + ".ext"]
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", name + ".crt", *extra, cwd=d)


def add_listener(world, lines):
    """A second listener on the test's broker; restarts it to take effect."""
    port = free_port()
    with open(world.broker.conf, "a") as f:
        f.write("listener %d 127.0.0.1\n" % port)
        for line in lines:
            f.write(line + "\n")
    world.broker.stop()
    world.broker.start()
    wait_port(port)
    return port


def test_tls_with_client_certificate_and_password(world):
    d = os.path.join(world.workdir, "pki")
    os.makedirs(d)
    make_pki(d)
    pw = os.path.join(d, "passwd")
    with open(pw, "w") as f:
        f.write("bridge:s3cret-mqtt\n")
    subprocess.run(["mosquitto_passwd", "-U", pw], check=True)
    port = add_listener(world, [
        "cafile %s/ca.crt" % d, "certfile %s/server.crt" % d, "keyfile %s/server.key" % d,
        "require_certificate true", "password_file %s" % pw])
    world.start_sim()
    bridge = world.bridge(MQTT_URL="mqtts://127.0.0.1:%d" % port, MQTT_CA_FILE=d + "/ca.crt",
                          MQTT_CERT_FILE=d + "/client.crt", MQTT_KEY_FILE=d + "/client.key",
                          MQTT_USERNAME="bridge", MQTT_PASSWORD="s3cret-mqtt").start()
    watch = world.client("sinch/sent")   # plain listener of the same broker
    watch.publish("sinch/send/15551234567", "over TLS")
    wait_until(lambda: watch.on("sinch/sent"), 10, "the outcome")
    assert "s3cret-mqtt" not in bridge.log()


def test_tls_refuses_an_unknown_server_certificate(world):
    d = os.path.join(world.workdir, "pki")
    os.makedirs(d)
    make_pki(d)
    port = add_listener(world, ["cafile %s/ca.crt" % d, "certfile %s/server.crt" % d,
                                "keyfile %s/server.key" % d])
    world.start_sim()
    # No MQTT_CA_FILE: the system's CAs do not know our test CA, so the handshake must fail.
    bridge = world.bridge(MQTT_URL="mqtts://127.0.0.1:%d" % port)
    r = subprocess.run([os.environ.get("SB_BRIDGE_BIN", "build/sinch-bridge"), "--check-config"],
                       env=bridge.environment(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "MQTT" in r.stderr


def test_websockets(world):
    port = add_listener(world, ["protocol websockets"])
    world.start_sim()
    world.bridge(MQTT_URL="ws://127.0.0.1:%d" % port).start()
    watch = world.client("sinch/sent")
    watch.publish("sinch/send/15551234567", "over websockets")
    wait_until(lambda: watch.on("sinch/sent"), 10, "the outcome")


def test_shared_subscription_splits_commands_and_sends_each_once(world):
    world.start_sim()
    a = world.bridge(BRIDGE_SHARE_GROUP="g", MQTT_CLIENT_ID="bridge-a", BRIDGE_RATE_LIMIT=0,
                     BRIDGE_DATA_DIR=os.path.join(world.workdir, "data-a")).start()
    b = world.bridge(BRIDGE_SHARE_GROUP="g", MQTT_CLIENT_ID="bridge-b", BRIDGE_RATE_LIMIT=0,
                     BRIDGE_DATA_DIR=os.path.join(world.workdir, "data-b")).start()
    pub = world.client()
    for i in range(200):
        pub.publish("sinch/send", json.dumps({"id": "s%d" % i, "to": "+15551234567",
                                              "text": "shared"}), wait=False)
    wait_until(lambda: len(world.sim.accepted_sends()) >= 200, 30, "200 sends")
    ids = [json.loads(r["body"]["message_metadata"])["id"] for r in world.sim.accepted_sends()]
    assert sorted(ids) == sorted("s%d" % i for i in range(200))   # each exactly once
    per_bridge = [b_.log().count(" sent to ") for b_ in (a, b)]
    assert all(n > 0 for n in per_bridge), per_bridge            # both took a share
