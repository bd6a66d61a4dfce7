"""Sinch webhooks to MQTT: verified, stored before the 200, deduplicated, normalised, and
published once even across a broker outage or a kill -9."""

import json
import time

import pytest

from conftest import inbound_text, wait_until

SECRET = "hook-secret"


def delivery(message_id, status, metadata="", identity="15551234567", reason=None):
    report = {"message_id": message_id, "conversation_id": "", "status": status,
              "channel_identity": {"channel": "WHATSAPP", "identity": identity, "app_id": ""},
              "contact_id": "", "metadata": metadata, "processing_mode": "DISPATCH"}
    if reason:
        report["reason"] = reason
    return {"app_id": "sim-app", "project_id": "sim-project",
            "accepted_time": "2026-11-28T14:20:04.456Z", "event_time": "2026-11-28T14:20:03Z",
            "message_delivery_report": report}


@pytest.fixture
def hooked(world):
    world.start_sim()
    bridge = world.bridge(SINCH_WEBHOOK_SECRET=SECRET,
                          BRIDGE_CONTACTS="mom=+46701234567").start()
    watch = world.client("sinch/inbound/#", "sinch/delivery/#", "sinch/event/#", "sinch/sent")
    return world, bridge, watch


def test_inbound_text_reaches_its_topic(hooked):
    world, bridge, watch = hooked
    status, _ = bridge.webhook(inbound_text())
    assert status == 200
    msg = wait_until(lambda: watch.json_on("sinch/inbound/whatsapp/15551234567"), 10,
                     "the inbound message")[0]
    assert msg["kind"] == "text" and msg["text"] == "I'm on it"
    assert msg["from"] == "+15551234567" and msg["channel"] == "WHATSAPP"
    assert msg["message_id"] == "01J0QKFBF5KZNWJ47TAN9ZT24M"
    assert msg["raw"]["message"]["id"] == "01J0QKFBF5KZNWJ47TAN9ZT24M"


def test_a_known_number_is_published_under_its_alias(hooked):
    world, bridge, watch = hooked
    assert bridge.webhook(inbound_text(sender="46701234567"))[0] == 200
    msg = wait_until(lambda: watch.json_on("sinch/inbound/whatsapp/mom"), 10, "mom's message")[0]
    assert msg["from"] == "+46701234567"


def test_bad_signatures_are_401_and_publish_nothing(hooked):
    world, bridge, watch = hooked
    body = inbound_text()
    assert bridge.webhook(body, secret="not-the-secret")[0] == 401
    assert bridge.webhook(body, secret=None)[0] == 401                      # unsigned
    assert bridge.webhook(body, timestamp=int(time.time()) - 301)[0] == 401  # stale
    assert bridge.webhook(body, timestamp=int(time.time()) + 301)[0] == 401  # from the future
    assert bridge.webhook(body, timestamp="12ab")[0] == 401
    time.sleep(0.5)
    assert watch.on("sinch/inbound/whatsapp/15551234567") == []
    status, text = bridge.http("GET", "/metrics")
    assert b'result="bad_signature"} 5' in text


def test_a_tampered_body_is_refused(hooked):
    world, bridge, watch = hooked
    raw = json.dumps(inbound_text()).encode()
    nonce, ts = "n1", str(int(time.time()))
    from conftest import sign
    headers = {"x-sinch-webhook-signature-nonce": nonce,
               "x-sinch-webhook-signature-timestamp": ts,
               "x-sinch-webhook-signature": sign(SECRET, raw, nonce, ts),
               "Content-Type": "application/json"}
    status, _ = bridge.http("POST", "/webhooks/sinch", raw.replace(b"on it", b"ON IT"), headers)
    assert status == 401
    time.sleep(0.3)
    assert watch.on("sinch/inbound/whatsapp/15551234567") == []


def test_redeliveries_are_published_once(hooked):
    world, bridge, watch = hooked
    body = inbound_text()
    raw = json.dumps(body).encode()
    ts = str(int(time.time()))
    assert bridge.webhook(raw, nonce="same", timestamp=ts)[0] == 200
    assert bridge.webhook(raw, nonce="same", timestamp=ts)[0] == 200   # byte-for-byte replay
    assert bridge.webhook(body)[0] == 200                              # re-signed redelivery
    wait_until(lambda: watch.on("sinch/inbound/whatsapp/15551234567"), 10, "the message")
    time.sleep(0.5)
    assert len(watch.on("sinch/inbound/whatsapp/15551234567")) == 1


def test_limits_and_routes(hooked):
    world, bridge, watch = hooked
    # Over 1 MiB: answered 413 from the headers alone, before a byte of the body is read.
    assert bridge.status_after_headers("POST", "/webhooks/sinch", 2 * 1024 * 1024) == 413
    assert bridge.status_after_headers("POST", "/webhooks/sinch", 10 * 1024 * 1024) == 413
    assert bridge.webhook(b"{" + b" " * (1024 * 1024 - 2) + b"}")[0] == 200  # exactly 1 MiB
    assert bridge.webhook(b"{not json")[0] == 400
    assert bridge.webhook(b"[1,2]")[0] == 400
    assert bridge.webhook(b"\xff\xfe")[0] == 400
    assert bridge.http("GET", "/webhooks/sinch")[0] == 405
    assert bridge.http("GET", "/nope")[0] == 404
    assert bridge.http("POST", "/healthz", b"{}")[0] == 405
    assert bridge.http("GET", "/healthz")[0] == 200
    status, body = bridge.http("GET", "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True, "reasons": []}
    # ...and it still serves: a valid webhook after all that
    assert bridge.webhook(inbound_text())[0] == 200
    wait_until(lambda: watch.on("sinch/inbound/whatsapp/15551234567"), 10, "the message")


def test_readyz_says_why_when_the_broker_is_away(hooked):
    world, bridge, watch = hooked
    world.broker.stop()
    status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(
        bridge.http("GET", "/readyz")), 10, "not ready")
    assert "MQTT broker not connected" in json.loads(body)["reasons"]
    assert bridge.http("GET", "/healthz")[0] == 200


def test_without_a_secret_the_webhook_path_is_503(world):
    world.start_sim()
    bridge = world.bridge().start()
    status, body = bridge.webhook(inbound_text())
    assert status == 503 and b"webhook secret not configured" in body
    assert bridge.http("GET", "/healthz")[0] == 200


def test_insecure_mode_takes_unsigned_webhooks(world):
    world.start_sim()
    bridge = world.bridge(BRIDGE_WEBHOOK_INSECURE=1).start()
    watch = world.client("sinch/inbound/#")
    assert bridge.webhook(inbound_text(), secret=None)[0] == 200
    wait_until(lambda: watch.on("sinch/inbound/whatsapp/15551234567"), 10, "the message")
    assert "BRIDGE_WEBHOOK_INSECURE" in bridge.log()


def test_200_webhooks_while_the_broker_is_down_are_all_published_in_order(hooked):
    world, bridge, watch = hooked
    world.broker.stop()
    for i in range(200):
        status, _ = bridge.webhook(inbound_text(text="m%d" % i, msg_id="ID%024d" % i))
        assert status == 200
    world.broker.start()
    watch = world.client("sinch/inbound/#")   # the old client went with the broker
    # The bridge republishes what it stored; a fresh subscriber sees them as they arrive.
    got = wait_until(lambda: (lambda m: m if len(m) >= 200 else None)(
        watch.json_on("sinch/inbound/whatsapp/15551234567")), 30, "200 published")
    texts = [m["text"] for m in got]
    assert texts[:200] == ["m%d" % i for i in range(200)]


def test_kill_9_after_the_200_loses_nothing(hooked):
    world, bridge, watch = hooked
    world.broker.stop()
    for i in range(20):
        assert bridge.webhook(inbound_text(text="k%d" % i, msg_id="K%025d" % i))[0] == 200
    bridge.kill()
    world.broker.start()
    watch = world.client("sinch/inbound/#")
    bridge.start()
    got = wait_until(lambda: (lambda m: m if len(m) >= 20 else None)(
        watch.json_on("sinch/inbound/whatsapp/15551234567")), 20, "20 published")
    assert sorted(m["text"] for m in got) == sorted("k%d" % i for i in range(20))


def test_delivery_reports_carry_the_command_id_and_never_go_backwards(hooked):
    world, bridge, watch = hooked
    watch.publish("sinch/send", json.dumps({"id": "freezer-42", "to": "+15551234567",
                                            "text": "x", "metadata": "cold"}))
    sent = wait_until(lambda: watch.json_on("sinch/sent"), 10, "sent")[0]
    req = world.sim.accepted_sends()[0]["body"]
    mid, meta = sent["message_id"], req["message_metadata"]
    for status in ("QUEUED_ON_CHANNEL", "READ", "DELIVERED"):   # DELIVERED arrives late
        assert bridge.webhook(delivery(mid, status, meta))[0] == 200
    topic = "sinch/delivery/whatsapp/15551234567"
    wait_until(lambda: len(watch.on(topic)) >= 2, 10, "two reports")
    time.sleep(0.5)
    reports = watch.json_on(topic)
    assert [r["status"] for r in reports] == ["QUEUED_ON_CHANNEL", "READ"]
    assert all(r["id"] == "freezer-42" and r["metadata"] == "cold" for r in reports)
    assert reports[0]["message_id"] == mid and reports[0]["to"] == "+15551234567"


def test_a_report_without_metadata_finds_its_command_in_the_store(hooked):
    world, bridge, watch = hooked
    watch.publish("sinch/send", json.dumps({"id": "no-meta", "to": "+46701234567",
                                            "text": "x"}))
    sent = wait_until(lambda: watch.json_on("sinch/sent"), 10, "sent")[0]
    assert bridge.webhook(delivery(sent["message_id"], "DELIVERED", "",
                                   identity="46701234567"))[0] == 200
    report = wait_until(lambda: watch.json_on("sinch/delivery/whatsapp/mom"), 10, "report")[0]
    assert report["id"] == "no-meta"


def test_a_choice_tap_names_the_option_and_the_command(hooked):
    world, bridge, watch = hooked
    body = inbound_text()
    body["message"]["contact_message"] = {"choice_response_message": {
        "message_id": "01J03E28JT97KB6CQ643DZVMXX", "postback_data": "alarm-7|1|Snooze"}}
    assert bridge.webhook(body)[0] == 200
    msg = wait_until(lambda: watch.json_on("sinch/inbound/whatsapp/15551234567"), 10, "tap")[0]
    assert msg["kind"] == "choice" and msg["text"] == "Snooze" and msg["id"] == "alarm-7"
    assert msg["choice"] == {"text": "Snooze", "postback": "alarm-7|1|Snooze", "index": 1}


def test_other_triggers_go_to_event_topics(hooked):
    world, bridge, watch = hooked
    start = {"app_id": "sim-app", "project_id": "sim-project",
             "accepted_time": "2026-11-28T14:25:10.300Z",
             "conversation_start_notification": {"conversation": {
                 "id": "01J0DJ8FSSZ5AWSH8VHTPRE95B", "app_id": "sim-app",
                 "contact_id": "01J0NPZX45HY43KWJRP1XPA7Z3", "active_channel": "WHATSAPP",
                 "active": True}}}
    assert bridge.webhook(start)[0] == 200
    assert bridge.webhook({"app_id": "sim-app", "brand_new_thing": {"x": 1}})[0] == 200
    ev = wait_until(lambda: watch.json_on("sinch/event/conversation_start"), 10, "event")[0]
    assert ev["trigger"] == "CONVERSATION_START"
    assert ev["raw"]["conversation_start_notification"]["conversation"]["active"] is True
    wait_until(lambda: watch.json_on("sinch/event/unknown"), 10, "unknown event")


def test_whatsapp_window_check_uses_the_fallback_or_fails_fast(world):
    world.start_sim()
    bridge = world.bridge(SINCH_WEBHOOK_SECRET=SECRET, BRIDGE_WINDOW_CHECK=1).start()
    watch = world.client("sinch/sent", "sinch/error")
    fallback = {"id": "checkin", "language": "en_US", "params": {"body[1]text": "Freezer 3"}}
    watch.publish("sinch/send", json.dumps({"id": "w1", "to": "+15551234567", "text": "hi"}))
    watch.publish("sinch/send", json.dumps({"id": "w2", "to": "+15551234567", "text": "hi",
                                            "fallback_template": fallback}))
    watch.publish("sinch/send", json.dumps({"id": "w3", "to": "+15551234567",
                                            "template": fallback}))
    wait_until(lambda: len(watch.on("sinch/sent")) + len(watch.on("sinch/error")) == 3, 10,
               "three outcomes")
    (err,) = watch.json_on("sinch/error")
    assert err["id"] == "w1" and err["error"]["code"] == "window_closed"
    assert err["attempts"] == 0
    by_id = {json.loads(r["body"]["message_metadata"])["id"]: r["body"]["message"]
             for r in world.sim.accepted_sends()}
    assert set(by_id) == {"w2", "w3"}
    assert by_id["w2"]["template_message"]["channel_template"]["WHATSAPP"]["template_id"] == \
        "checkin"
    # The user writes: the window opens, free-form text goes out as text.
    assert bridge.webhook(inbound_text())[0] == 200
    watch.publish("sinch/send", json.dumps({"id": "w4", "to": "+15551234567", "text": "hi",
                                            "fallback_template": fallback}))
    wait_until(lambda: "w4" in {o["id"] for o in watch.json_on("sinch/sent")}, 10, "w4 sent")
    w4 = [json.loads(r["body"]["message_metadata"])["id"] == "w4" and r["body"]["message"]
          for r in world.sim.accepted_sends()]
    assert {"text_message": {"text": "hi"}} in w4


def test_metrics_count_both_directions(hooked):
    world, bridge, watch = hooked
    watch.publish("sinch/send/15551234567", "counted")
    watch.publish("sinch/send", b"{oops")
    wait_until(lambda: watch.on("sinch/sent"), 10, "sent")
    assert bridge.webhook(inbound_text())[0] == 200
    assert bridge.webhook(inbound_text(), secret="wrong")[0] == 401
    wait_until(lambda: watch.on("sinch/inbound/whatsapp/15551234567"), 10, "inbound")
    status, text = bridge.http("GET", "/metrics")
    lines = set(text.decode().splitlines())
    assert status == 200
    for line in ('sinch_bridge_commands_sent_total 1',
                 'sinch_bridge_commands_failed_by_code_total{code="invalid_command"} 1',
                 'sinch_bridge_sinch_latency_seconds_count 1',
                 'sinch_bridge_sinch_latency_seconds_bucket{le="+Inf"} 1',
                 'sinch_bridge_mqtt_connected 1',
                 'sinch_bridge_webhooks_total{trigger="MESSAGE_INBOUND",result="stored"} 1',
                 'sinch_bridge_webhooks_total{trigger="UNKNOWN",result="bad_signature"} 1'):
        assert line in lines, line


def test_a_slow_client_cannot_hold_the_listener(hooked):
    world, bridge, watch = hooked
    import socket
    slow = socket.create_connection(("127.0.0.1", bridge.http_port))
    slow.sendall(b"POST /webhooks/sinch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    # Meanwhile everyone else is served at once.
    t0 = time.monotonic()
    assert bridge.webhook(inbound_text())[0] == 200
    assert bridge.http("GET", "/healthz")[0] == 200
    assert time.monotonic() - t0 < 2
    # ...and the trickler is cut off after the body timeout.
    slow.settimeout(20)
    t0 = time.monotonic()
    try:
        data = slow.recv(100)
    except ConnectionResetError:
        data = b""
    assert data == b"" and time.monotonic() - t0 < 15
    slow.close()


def test_a_store_that_cannot_write_answers_503_then_recovers(hooked):
    """A full disk, played by a file-size limit set on the running bridge (prlimit): webhooks
    are refused with 503 (so Sinch retries) and /readyz says why; once there is room again the
    retry is taken and everything is published exactly once."""
    import os
    import subprocess
    world, bridge, watch = hooked
    pid = bridge.proc.pid
    files = [os.path.join(bridge.data, f) for f in os.listdir(bridge.data)]
    limit = max(os.path.getsize(f) for f in files) + 32 * 1024
    subprocess.run(["prlimit", "--pid", str(pid), "--fsize=%d:unlimited" % limit], check=True)
    answered, refused = [], None
    for i in range(2000):
        body = inbound_text(text="d%d" % i, msg_id="D%025d" % i)
        status, _ = bridge.webhook(body)
        if status == 503:
            refused = body
            break
        assert status == 200
        answered.append("d%d" % i)
    assert refused is not None, "the store never ran out of room"
    status, ready = bridge.http("GET", "/readyz")
    assert status == 503 and "store not writable" in json.loads(ready)["reasons"]
    subprocess.run(["prlimit", "--pid", str(pid), "--fsize=unlimited:unlimited"], check=True)
    assert bridge.webhook(refused)[0] == 200            # Sinch's retry
    assert bridge.webhook(inbound_text(text="after", msg_id="A" * 26))[0] == 200
    want = answered + [refused["message"]["contact_message"]["text_message"]["text"], "after"]
    got = wait_until(lambda: (lambda m: m if len(m) >= len(want) else None)(
        watch.json_on("sinch/inbound/whatsapp/15551234567")), 20, "everything published")
    time.sleep(0.5)
    texts = [m["text"] for m in watch.json_on("sinch/inbound/whatsapp/15551234567")]
    assert sorted(texts) == sorted(want)               # each once
    assert bridge.http("GET", "/readyz")[0] == 200


def metric(bridge, name):
    """The value of one unlabelled metric on /metrics."""
    status, text = bridge.http("GET", "/metrics")
    assert status == 200
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s on /metrics" % name)


class Sender:
    """One keep-alive connection that posts webhooks signed as Sinch signs them."""

    def __init__(self, bridge):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", bridge.http_port, timeout=30)
        self.pending = None

    def send(self, body):
        import uuid
        from conftest import sign
        raw = json.dumps(body).encode()
        nonce, ts = uuid.uuid4().hex, str(int(time.time()))
        self.conn.request("POST", "/webhooks/sinch", raw, {
            "Content-Type": "application/json",
            "x-sinch-webhook-signature-nonce": nonce,
            "x-sinch-webhook-signature-timestamp": ts,
            "x-sinch-webhook-signature-algorithm": "HmacSHA256",
            "x-sinch-webhook-signature": sign(SECRET, raw, nonce, ts)})

    def status(self):
        r = self.conn.getresponse()
        r.read()
        return r.status

    def post(self, body):
        self.send(body)
        return self.status()


def test_a_burst_of_concurrent_webhooks_shares_commits_and_is_published_once(hooked):
    """200 webhooks over 20 parallel connections, 20 of them copies of others (Sinch's
    redeliveries, signed anew): every one is answered 200 and each distinct event is published
    exactly once. The first 20 arrive while the bridge is paused (SIGSTOP), so they wait
    together: they are stored in one commit, and a copy inside that same batch is still a
    duplicate."""
    import os
    import signal
    import threading
    world, bridge, watch = hooked
    events = [inbound_text(text="b%d" % i, msg_id="B%025d" % i) for i in range(180)]
    # Connection c sends, in turn: first[c], then rest[c] (9 each). Copies: two inside the
    # paused batch, the rest of earlier events, re-sent later on other connections.
    first = [events[c] for c in range(18)] + [events[0], events[5]]
    later = events[18:]                                   # 162 distinct
    copies = [events[(7 * k) % 100] for k in range(18)]   # 18 more copies
    rest = [[] for _ in range(20)]
    for i, body in enumerate(later + copies):
        rest[i % 20].append(body)
    assert sum(map(len, rest)) == 180

    senders = [Sender(bridge) for _ in range(20)]
    statuses = [[] for _ in range(20)]
    commits_before = metric(bridge, "sinch_bridge_inbox_commits_total")
    os.kill(bridge.proc.pid, signal.SIGSTOP)
    try:
        for c in range(20):
            senders[c].send(first[c])        # buffered by the kernel until the bridge runs
    finally:
        os.kill(bridge.proc.pid, signal.SIGCONT)
    firsts = [s.status() for s in senders]
    assert firsts == [200] * 20
    paused_commits = metric(bridge, "sinch_bridge_inbox_commits_total") - commits_before
    assert 1 <= paused_commits <= 2, paused_commits   # 20 webhooks, one turn (or two)

    def run(c):
        for body in rest[c]:
            statuses[c].append(senders[c].post(body))

    threads = [threading.Thread(target=run, args=(c,)) for c in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [s for per in statuses for s in per] == [200] * 180
    topic = "sinch/inbound/whatsapp/15551234567"
    wait_until(lambda: len({m["message_id"] for m in watch.json_on(topic)}) >= 180, 20,
               "180 distinct events published")
    time.sleep(0.5)
    got = [m["message_id"] for m in watch.json_on(topic)]
    assert sorted(got) == sorted(e["message"]["id"] for e in events)   # each exactly once
    status, text = bridge.http("GET", "/metrics")
    lines = set(text.decode().splitlines())
    assert 'sinch_bridge_webhooks_total{trigger="MESSAGE_INBOUND",result="stored"} 180' in lines
    assert 'sinch_bridge_webhooks_total{trigger="MESSAGE_INBOUND",result="duplicate"} 20' in lines
    commits = metric(bridge, "sinch_bridge_inbox_commits_total") - commits_before
    print("\n200 webhooks over 20 connections: %d commits" % commits)
    assert commits < 200


def test_a_client_that_leaves_before_its_answer_changes_nothing(hooked):
    """Clients that hang up while their answer waits for the commit (the bridge is paused with
    their requests in its socket buffers): the bridge drops those answers and goes on; what it
    read is stored and published once, and everyone else is served."""
    import os
    import signal
    import socket
    from conftest import sign
    world, bridge, watch = hooked
    os.kill(bridge.proc.pid, signal.SIGSTOP)
    try:
        for i, linger in enumerate((False, True)):
            raw = json.dumps(inbound_text(text="gone%d" % i, msg_id="G%025d" % i)).encode()
            nonce, ts = "gone%d" % i, str(int(time.time()))
            s = socket.create_connection(("127.0.0.1", bridge.http_port))
            s.sendall(("POST /webhooks/sinch HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: %d\r\n"
                       "x-sinch-webhook-signature-nonce: %s\r\n"
                       "x-sinch-webhook-signature-timestamp: %s\r\n"
                       "x-sinch-webhook-signature: %s\r\n\r\n"
                       % (len(raw), nonce, ts, sign(SECRET, raw, nonce, ts))).encode() + raw)
            if linger:   # a reset rather than a close
                import struct
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    finally:
        os.kill(bridge.proc.pid, signal.SIGCONT)
    assert bridge.webhook(inbound_text(text="after", msg_id="A" * 26))[0] == 200
    wait_until(lambda: "after" in [m["text"] for m in
                                   watch.json_on("sinch/inbound/whatsapp/15551234567")],
               10, "the next webhook published")
    time.sleep(0.5)
    texts = [m["text"] for m in watch.json_on("sinch/inbound/whatsapp/15551234567")]
    assert texts.count("after") == 1
    # Closed: its whole request was read before the close. Reset: Linux still hands over what
    # arrived before the reset, but that is the kernel's choice, so at most once.
    assert texts.count("gone0") == 1 and texts.count("gone1") <= 1
    assert bridge.http("GET", "/healthz")[0] == 200
    assert bridge.proc.poll() is None


def listeners(port):
    """The local addresses listening on `port`, from /proc/net/tcp and tcp6 ("127.0.0.1",
    "0.0.0.0", "::", ...)."""
    import ipaddress
    found = []
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(path) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.split(":")
                if state != "0A" or int(hexport, 16) != port:
                    continue
                raw = bytes.fromhex(addr)
                # The kernel prints each 32-bit word in host (little-endian) order.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(str(ipaddress.ip_address(raw)))
    return found


def test_the_listener_binds_only_the_address_it_is_given(hooked):
    """BRIDGE_LISTEN=127.0.0.1:<port> must not listen on every interface (lws 4.1 did, on an
    IPv6 socket, until it was given an IPv4 one)."""
    world, bridge, watch = hooked
    assert listeners(bridge.http_port) == ["127.0.0.1"]
