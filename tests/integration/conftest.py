"""The integration harness: a real mosquitto, the real sinch-sim and the real daemon, each on a
free loopback port, with a fresh data directory per test. Only Sinch is faked.

Binaries come from SB_BRIDGE_BIN and SB_SIM_BIN (ctest sets both)."""

import base64
import getpass
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid

import paho.mqtt.client as mqtt
import pytest

BRIDGE_BIN = os.environ.get("SB_BRIDGE_BIN", "build/sinch-bridge")
SIM_BIN = os.environ.get("SB_SIM_BIN", "build/tests/sim/sinch-sim")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
# Under sanitizers everything is slower: every wait scales with this.
SLOW = float(os.environ.get("SB_TEST_SLOWDOWN", "1"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout * SLOW, what))


def sign(secret, body, nonce, timestamp):
    mac = hmac.new(secret.encode(), body + b"." + nonce.encode() + b"." + timestamp.encode(),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def inbound_text(text="I'm on it", sender="15551234567", msg_id="01J0QKFBF5KZNWJ47TAN9ZT24M"):
    """A MESSAGE_INBOUND webhook body, as Sinch sends it (facts section 7), with a text."""
    return {
        "app_id": "sim-app", "project_id": "sim-project",
        "accepted_time": "2026-11-28T14:23:45.123Z", "event_time": "2026-11-28T14:23:44Z",
        "message": {
            "id": msg_id, "direction": "TO_APP",
            "contact_message": {"text_message": {"text": text}},
            "channel_identity": {"channel": "WHATSAPP", "identity": sender, "app_id": ""},
            "conversation_id": "", "contact_id": "", "metadata": "",
            "accept_time": "2026-11-28T14:23:45.101Z", "processing_mode": "DISPATCH"},
        "message_metadata": "", "correlation_id": ""}


def wait_port(port, timeout=10):
    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_until(up, timeout, "port %d" % port)


class Broker:
    """mosquitto with persistence, so a restart keeps sessions and queued messages."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = os.path.join(workdir, "mosquitto")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % self.port)
            # Run as root, mosquitto would switch to its own user, which cannot write its
            # database here: a restart would then forget every session.
            f.write("user %s\n" % getpass.getuser())
            f.write("allow_anonymous true\n")
            f.write("persistence true\npersistence_location %s/\n" % self.dir)
            f.write("max_queued_messages 0\n")  # max_inflight_messages: its default, 20
            f.write("log_dest file %s/mosquitto.log\nlog_type all\n" % self.dir)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # mosquitto saves its database on SIGTERM
            self.proc.wait(10)
        self.proc = None

    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port


class Sim:
    def __init__(self, workdir, *args):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "sim.log"), "w")
        self.proc = subprocess.Popen([SIM_BIN, "--host", "127.0.0.1", "--port", str(self.port)]
                                     + list(args), stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)
        line = self.proc.stdout.readline()
        assert "listening" in line, "sinch-sim did not start: %r" % line
        self.base = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text else None

    def faults(self, *rules):
        return self.call("POST", "/_sim/faults", {"rules": list(rules)})

    def clear_faults(self):
        self.call("DELETE", "/_sim/faults")

    def requests(self, endpoint=None):
        out, since = [], 0
        while True:
            page = self.call("GET", "/_sim/requests?since=%d&limit=10000" % since)
            out += page["requests"]
            if not page["requests"]:
                break
            since = page["next"]
        return [r for r in out if endpoint is None or r["endpoint"] == endpoint]

    def accepted_sends(self):
        return [r for r in self.requests("send") if r["status"] == 200]

    def stats(self):
        return self.call("GET", "/_sim/stats")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


class Client:
    """A test's MQTT client: collects what arrives on its subscriptions."""

    def __init__(self, broker, version=mqtt.MQTTv5):
        self.messages = []
        self.lock = threading.Lock()
        self.version = version
        self.c = mqtt.Client(client_id="test-" + uuid.uuid4().hex[:8], protocol=version)
        self.c.max_inflight_messages_set(1000)
        self.c.max_queued_messages_set(0)
        self.c.on_message = self._on_message
        if version == mqtt.MQTTv5:
            self.c.connect("127.0.0.1", broker.port, clean_start=True)
        else:
            self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append(msg)

    def subscribe(self, *topics):
        for t in topics:
            result, mid = self.c.subscribe(t, qos=1)
            assert result == mqtt.MQTT_ERR_SUCCESS
        time.sleep(0.2)

    def publish(self, topic, payload, qos=1, properties=None, wait=True):
        info = self.c.publish(topic, payload, qos=qos, properties=properties)
        if wait:
            info.wait_for_publish(10 * SLOW)
        return info

    def on(self, topic):
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def json_on(self, topic):
        return [json.loads(m.payload) for m in self.on(topic)]

    def close(self):
        # disconnect() first: it ends the network loop at once, where loop_stop() alone waits
        # for the loop's one-second select() to come round.
        self.c.disconnect()
        self.c.loop_stop()


class Bridge:
    count = 0

    def __init__(self, workdir, broker, sim, **env):
        Bridge.count += 1
        self.name = "bridge%d" % Bridge.count
        self.workdir = workdir
        self.broker = broker
        self.sim = sim
        self.data = os.path.join(workdir, "data")
        self.http_port = free_port()
        self.env = dict(env)
        self.args = []  # command-line arguments, e.g. ["--config", path]
        self.proc = None
        self.logs = []

    def environment(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SINCH_", "MQTT_", "BRIDGE_"))}
        env.update({
            "SINCH_PROJECT_ID": "sim-project",
            "SINCH_APP_ID": "sim-app",
            "SINCH_KEY_ID": "sim-key",
            "SINCH_KEY_SECRET": "sim-secret",
            "SINCH_API_URL": self.sim.base if self.sim else "http://127.0.0.1:9",
            "SINCH_AUTH_URL": (self.sim.base if self.sim else "http://127.0.0.1:9")
            + "/oauth2/token",
            "MQTT_URL": self.broker.url(),
            "MQTT_CLIENT_ID": "bridge-under-test",
            "BRIDGE_DATA_DIR": self.data,
            "BRIDGE_LISTEN": "127.0.0.1:%d" % self.http_port,
            "BRIDGE_RETRY_MAX_DELAY": "2",
        })
        env.update({k: str(v) for k, v in self.env.items()})
        return env

    def start(self, wait_online=True):
        log_path = os.path.join(self.workdir, "%s-run%d.log" % (self.name, len(self.logs)))
        self.logs.append(log_path)
        watcher = None
        if wait_online:
            watcher = Client(self.broker)
            watcher.subscribe("sinch/bridge/state")
            with watcher.lock:
                watcher.messages.clear()
        self.proc = subprocess.Popen([BRIDGE_BIN] + self.args, env=self.environment(),
                                     stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
        if watcher:
            try:
                wait_until(lambda: [m for m in watcher.on("sinch/bridge/state")
                                    if m.payload == b"online"], 15, "the bridge to be online")
            finally:
                watcher.close()
        return self

    def http(self, method, path, body=None, headers=None, timeout=10):
        """One request to the bridge's listener: (status, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def status_after_headers(self, method, path, content_length):
        """Sends only the headers of a request announcing a body of content_length bytes and
        returns the status the bridge answers before any of the body was sent."""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=10) as s:
            s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n" % (method, path, content_length)).encode())
            head = s.recv(4096).decode(errors="replace")
        return int(head.split(" ", 2)[1])

    def webhook(self, body, secret="hook-secret", nonce=None, timestamp=None, **kw):
        """POSTs a webhook signed as Sinch signs it (facts section 8)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        nonce = nonce or uuid.uuid4().hex
        timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers.update({
                "x-sinch-webhook-signature-nonce": nonce,
                "x-sinch-webhook-signature-timestamp": timestamp,
                "x-sinch-webhook-signature-algorithm": "HmacSHA256",
                "x-sinch-webhook-signature": sign(secret, raw, nonce, timestamp),
            })
        headers.update(kw.get("headers", {}))
        return self.http("POST", "/webhooks/sinch", raw, headers)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            return self.proc.wait(timeout * SLOW)
        return self.proc.returncode if self.proc else None

    def log(self):
        text = ""
        for path in self.logs:
            with open(path, errors="replace") as f:
                text += f.read()
        return text


class World:
    """Everything one test needs; stopped and checked when the test ends."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.broker = Broker(workdir)
        self.sim = None
        self.bridges = []
        self.clients = []

    def start_sim(self, *args):
        self.sim = Sim(self.workdir, *args)
        return self.sim

    def bridge(self, **env):
        b = Bridge(self.workdir, self.broker, self.sim, **env)
        self.bridges.append(b)
        return b

    def client(self, *topics, version=mqtt.MQTTv5):
        c = Client(self.broker, version)
        if topics:
            c.subscribe(*topics)
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            c.close()
        codes = [b.stop() for b in self.bridges]
        if self.sim:
            self.sim.stop()
        self.broker.stop()
        return codes


@pytest.fixture
def world(request):
    workdir = tempfile.mkdtemp(prefix="sb-it-")
    w = World(workdir)
    try:
        yield w
    finally:
        w.close()
        logs = "".join(b.log() for b in w.bridges)
        # Sanitizer reports go to the bridge's stderr: any of them fails the test.
        assert "ERROR: AddressSanitizer" not in logs, logs[-4000:]
        assert "ERROR: LeakSanitizer" not in logs, logs[-4000:]
        assert "runtime error:" not in logs, logs[-4000:]
        assert "WARNING: ThreadSanitizer" not in logs, logs[-6000:]
        if request.node.rep_call.passed if hasattr(request.node, "rep_call") else False:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("\nkept %s for inspection; bridge log tail:\n%s" % (workdir, logs[-3000:]))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def running(world):
    """The usual set-up: sim, bridge online, a client watching the outcome topics."""
    world.start_sim()
    bridge = world.bridge().start()
    watch = world.client("sinch/sent", "sinch/error")
    return world, bridge, watch
