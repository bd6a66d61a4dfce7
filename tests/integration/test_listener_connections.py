"""The listener's connections end however their clients behave: none is left open after its
client hung up (CLOSE_WAIT into the listen port, an fd lost for good), and the loop serves on.
Pipelined requests used to stop the whole bridge: lws 4.1 parsed the second one from its own
buffer, read the start of its headers as its body, and spun in its loop over that buffer once
the transaction ended there."""

import json
import os
import socket
import struct
import time
import uuid

import pytest

from conftest import inbound_text, sign, wait_until

SECRET = "hook-secret"
INBOUND = "sinch/inbound/whatsapp/15551234567"


@pytest.fixture
def hooked(world):
    world.start_sim()
    bridge = world.bridge(SINCH_WEBHOOK_SECRET=SECRET).start()
    watch = world.client("sinch/inbound/#")
    return world, bridge, watch


def webhook(text, secret=SECRET):
    """The bytes of one webhook POST, signed as Sinch signs it (with `secret`)."""
    raw = json.dumps(inbound_text(text=text, msg_id=("L" + text).ljust(26, "0"))).encode()
    nonce, ts = uuid.uuid4().hex, str(int(time.time()))
    return ("POST /webhooks/sinch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nx-sinch-webhook-signature-nonce: %s\r\n"
            "x-sinch-webhook-signature-timestamp: %s\r\n"
            "x-sinch-webhook-signature-algorithm: HmacSHA256\r\n"
            "x-sinch-webhook-signature: %s\r\n\r\n"
            % (len(raw), nonce, ts, sign(secret, raw, nonce, ts))).encode() + raw


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def close_wait_into(pid, port):
    """pid's TCP sockets into `port` whose peer hung up and which it still holds open
    ("CLOSE_WAIT <local>-><remote>"), from /proc/<pid>/fd and the tables of its namespace."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for line in f.readlines()[1:]:
                v = line.split()
                local, remote = (int(a.rsplit(":", 1)[1], 16) for a in (v[1], v[2]))
                if v[9] in inodes and v[3] == "08" and local == port:
                    found.append("CLOSE_WAIT %d->%d" % (local, remote))
    return found


def until_closed(s, timeout=10):
    """What the bridge sends on s until it closes the connection; None when it has not closed
    it after `timeout` seconds."""
    s.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            return None
        if not data:
            return got
        got += data
    return None


def statuses(raw):
    return [int(line.split()[1]) for line in raw.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def check_listener_ends_them(bridge, wait=10):
    """No socket into the listener left in CLOSE_WAIT (a bounded wait: lws needs a service pass
    to see each close), and the listener still answers. A bridge that fails this may be stuck
    in lws, where SIGTERM cannot reach it: it is killed, so that the test fails rather than
    its clean-up."""
    try:
        wait_until(lambda: not close_wait_into(bridge.proc.pid, bridge.http_port), wait,
                   "no socket into the listener in CLOSE_WAIT")
        assert bridge.http("GET", "/healthz", timeout=5)[0] == 200
    except BaseException:
        print("left open:", close_wait_into(bridge.proc.pid, bridge.http_port))
        if bridge.proc.poll() is None:
            bridge.kill()
        raise


def test_pipelined_requests_end_their_connection_and_stop_nothing(hooked):
    """A request sent behind another on the same connection, before the first one's answer:
    the first is answered, the connection then closed (the client sends the rest again,
    RFC 9112 9.3.2), the pipelined one neither answered nor handled, and the bridge serves on.
    Before the fix the bridge spun at 100% CPU in lws from the first of these, every
    connection into the listener was left in CLOSE_WAIT and nothing else was served."""
    world, bridge, watch = hooked
    cases = [
        # (what the client sends in one write, the one status it must get)
        (webhook("p1") + webhook("p2"), 200),              # behind a deferred answer
        (webhook("p3") + webhook("p4") + webhook("p5"), 200),
        (HEALTHZ + webhook("p6"), 200),                    # behind an answer given at once
        (webhook("p7", secret="wrong") + webhook("p8"), 401),
        (webhook("p9") + b"garbage that is no request\r\n\r\n", 200),
        (HEALTHZ + HEALTHZ, 200),
    ]
    try:
        for data, status in cases:
            with socket.create_connection(("127.0.0.1", bridge.http_port), timeout=10) as s:
                s.sendall(data)
                got = until_closed(s)
                assert got is not None, "the bridge did not close after %r" % data[:40]
                assert statuses(got) == [status], got
                assert b"connection: close\r\n" in got
    finally:
        check_listener_ends_them(bridge)
    assert bridge.webhook(inbound_text(text="after", msg_id="A" * 26))[0] == 200
    wait_until(lambda: "after" in [m["text"] for m in watch.json_on(INBOUND)], 10,
               "the webhook after them published")
    time.sleep(0.5)
    texts = sorted(m["text"] for m in watch.json_on(INBOUND))
    assert texts == ["after", "p1", "p3", "p9"]   # each first one once, no pipelined one


def test_clients_that_hang_up_leave_nothing_open(hooked):
    """However a client leaves (idle on a kept-alive connection, right after its request while
    the answer waits for the commit, with a reset, in the middle of its headers or body, or
    without a word), the bridge closes its side."""
    world, bridge, watch = hooked
    port = bridge.http_port
    socks = []
    # Kept alive, then closed while idle: two webhooks answered on one connection first.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    for text in ("h1", "h2"):
        s.sendall(webhook(text))
        assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
    socks.append(s)
    # Gone before the answer: the request is in, the answer waits for the turn's commit.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(webhook("h3"))
    socks.append(s)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(webhook("h4"))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
    socks.append(s)
    # Half a request: headers, or headers and half the body.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(webhook("h5")[:40])
    socks.append(s)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(webhook("h6")[:-20])
    socks.append(s)
    # Nothing at all.
    socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    time.sleep(0.3)
    for s in socks:
        s.close()
    check_listener_ends_them(bridge)
    wait_until(lambda: {"h1", "h2", "h3"} <= {m["text"] for m in watch.json_on(INBOUND)}, 10,
               "the webhooks read in whole published")
