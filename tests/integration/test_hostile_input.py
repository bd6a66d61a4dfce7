"""Hostile input (promise 3: bad input never stops the bridge): a table of bad commands and bad
webhooks, each with its documented answer (README, "Outcomes" and "HTTP listener"), sent
while valid traffic keeps flowing; every valid command and webhook among them must get through,
and how long they took is printed."""

import json
import socket
import time

from conftest import inbound_text, wait_until

SECRET = "hostile-secret"
R = "15551234567"


def without(path):
    """inbound_text() with the key at `path` ("message.contact_message") removed."""
    body = inbound_text("missing " + path, R, "M-" + path)
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node[p]
    del node[last]
    return body


# (topic, payload, expected error code); None: published on no topic the bridge reads.
BAD_COMMANDS = [
    ("sinch/send", b"{oops", "invalid_command"),
    ("sinch/send", b"\xff\xfe\xfd", "invalid_command"),
    ("sinch/send/" + R, b"\xc3\x28 bad UTF-8", "invalid_command"),
    ("sinch/send", b"[" * 5000 + b"]" * 5000, "invalid_command"),
    ("sinch/send", json.dumps({"to": R, "text": "x" * 70000}).encode(), "invalid_command"),
    ("sinch/send/" + R, b"x" * 70000, "invalid_command"),
    ("sinch/send", json.dumps({"to": 15551234567, "text": "number as to"}).encode(),
     "invalid_command"),
    ("sinch/send", json.dumps({"to": R, "text": 42}).encode(), "invalid_command"),
    ("sinch/send", json.dumps({"to": R, "text": "x", "ttl": "soon"}).encode(), "invalid_command"),
    ("sinch/send", json.dumps({"to": R, "text": "x", "id": {"no": 1}}).encode(),
     "invalid_command"),
    ("sinch/send", json.dumps({"text": "no recipient"}).encode(), "invalid_command"),
    ("sinch/send", json.dumps({"to": R}).encode(), "invalid_command"),
    ("sinch/send", json.dumps({"to": R, "text": "x", "bogus": 1}).encode(), "invalid_command"),
    ("sinch/send", json.dumps([{"to": R, "text": "an array"}]).encode(), "invalid_command"),
    ("sinch/send", b"", "invalid_command"),
    ("sinch/send/" + R, json.dumps({"to": R, "text": "to twice"}).encode(), "invalid_command"),
    # (Control characters in a topic never reach the bridge: mosquitto disconnects the client
    # that publishes one, as MQTT 5 allows.)
    ("sinch/send/\uff4d\uff4f\uff4d", b"a full-width alias", "invalid_recipient"),
    ("sinch/send/%2B15551234567", b"an escaped plus", "invalid_recipient"),
    ("sinch/send/0000", b"not E.164", "invalid_recipient"),
    ("sinch/send/nobody", b"unknown alias", "invalid_recipient"),
    ("sinch/send/" + R + "/deeper", b"not a topic we read", None),
]


def test_bad_commands_get_their_error_and_valid_ones_keep_flowing(world):
    world.start_sim()
    world.bridge(BRIDGE_RATE_LIMIT="0").start()
    c = world.client("sinch/sent", "sinch/error")
    sent_at = {}
    for i, (topic, payload, _) in enumerate(BAD_COMMANDS):
        c.publish(topic, payload)
        cid = "valid-%d" % i
        sent_at[cid] = time.monotonic()
        c.publish("sinch/send", json.dumps({"id": cid, "to": R, "text": "between"}))
    want_errors = [code for _, _, code in BAD_COMMANDS if code]
    wait_until(lambda: len(c.on("sinch/sent")) == len(BAD_COMMANDS), 20, "every valid command")
    wait_until(lambda: len(c.on("sinch/error")) == len(want_errors), 20, "every error")
    time.sleep(0.5)   # nothing more comes (the deeper topic is not read)
    errors = c.json_on("sinch/error")
    assert [e["error"]["code"] for e in errors] == want_errors
    assert all(e["attempts"] == 0 for e in errors)
    assert len(c.on("sinch/error")) == len(want_errors)
    sent = {o["id"] for o in c.json_on("sinch/sent")}
    assert sent == set(sent_at)
    assert len(world.sim.accepted_sends()) == len(BAD_COMMANDS)   # nothing bad reached Sinch


def signed_headers(bridge, raw, secret=SECRET):
    from conftest import sign
    import uuid
    nonce, ts = uuid.uuid4().hex, str(int(time.time()))
    return {"Content-Type": "application/json",
            "x-sinch-webhook-signature-nonce": nonce,
            "x-sinch-webhook-signature-timestamp": ts,
            "x-sinch-webhook-signature-algorithm": "HmacSHA256",
            "x-sinch-webhook-signature": sign(secret, raw, nonce, ts)}


def header_flood(bridge):
    """200 headers of 100 bytes: more than the listener keeps (8 KiB). Returns what it said."""
    flood = "".join("X-Flood-%d: %s\r\n" % (i, "a" * 100) for i in range(200))
    with socket.create_connection(("127.0.0.1", bridge.http_port), timeout=10) as s:
        s.sendall(("POST /webhooks/sinch HTTP/1.1\r\nHost: x\r\n" + flood + "\r\n").encode())
        try:
            return s.recv(200)
        except ConnectionResetError:
            return b""


def test_bad_webhooks_get_their_status_and_valid_ones_keep_flowing(world):
    world.start_sim()
    bridge = world.bridge(SINCH_WEBHOOK_SECRET=SECRET).start()
    watch = world.client("sinch/inbound/#", "sinch/event/#")
    bad = [
        ("not JSON", b"{oops", 400),
        ("invalid UTF-8", b'{"a":"\xff"}', 400),
        ("deep nesting", b"[" * 100000 + b"]" * 100000, 400),
        ("a JSON array", b"[1, 2, 3]", 400),
        ("a number", b"42", 400),
        ("numbers where strings belong", json.dumps(
            dict(inbound_text("n", R, 7), app_id=12)).encode(), 200),
        ("a huge string", json.dumps(inbound_text("x" * 900000, R, "HUGE")).encode(), 200),
    ]
    bad += [("missing " + p, json.dumps(without(p)).encode(), 200)
            for p in ("app_id", "message.id", "message.contact_message",
                      "message.channel_identity", "message.contact_message.text_message",
                      "message")]
    valid_ids = []
    took = []
    for i, (what, raw, want) in enumerate(bad):
        status, _ = bridge.http("POST", "/webhooks/sinch", raw, signed_headers(bridge, raw))
        assert status == want, (what, status)
        t0 = time.monotonic()
        body = json.dumps(inbound_text("valid %d" % i, R, "V%025d" % i)).encode()
        assert bridge.http("POST", "/webhooks/sinch", body, signed_headers(bridge, body))[0] == 200
        took.append(time.monotonic() - t0)
        valid_ids.append("V%025d" % i)
    # Content types: JSON (with parameters, any case) or none is taken; another is 415.
    for ctype, want in [("text/plain", 415), ("application/x-www-form-urlencoded", 415),
                        ("multipart/form-data; boundary=x", 415), ("application/jsonp", 415),
                        ("Application/JSON; charset=utf-8", 200), (None, 200)]:
        body = json.dumps(inbound_text("typed", R, "T-%s" % ctype)).encode()
        headers = signed_headers(bridge, body)
        if ctype:
            headers["Content-Type"] = ctype
        else:
            del headers["Content-Type"]
        assert bridge.http("POST", "/webhooks/sinch", body, headers)[0] == want, ctype
    # A byte-for-byte replay inside the time window and a re-signed one: 200, published once
    # (PRODUCT.md "Details"); unsigned and wrongly signed: 401.
    body = json.dumps(inbound_text("replayed", R, "R" * 26)).encode()
    headers = signed_headers(bridge, body)
    assert bridge.http("POST", "/webhooks/sinch", body, headers)[0] == 200
    assert bridge.http("POST", "/webhooks/sinch", body, headers)[0] == 200
    assert bridge.http("POST", "/webhooks/sinch", body, signed_headers(bridge, body))[0] == 200
    assert bridge.http("POST", "/webhooks/sinch", body, {"Content-Type": "application/json"})[0] \
        == 401
    assert bridge.http("POST", "/webhooks/sinch", body, signed_headers(bridge, body, "wrong"))[0] \
        == 401
    # Oversized: answered from the headers; a header flood is cut off.
    assert bridge.status_after_headers("POST", "/webhooks/sinch", 10 * 1024 * 1024) == 413
    said = header_flood(bridge)
    assert said == b"" or said.startswith(b"HTTP/1.1 4"), said
    # Every valid one was published, each once, and the listener still answers.
    got = wait_until(lambda: (lambda m: m if len(m) >= len(valid_ids) + 1 else None)(
        [json.loads(m.payload) for m in watch.on("sinch/inbound/whatsapp/" + R)
         if (json.loads(m.payload).get("text") or "").startswith(("valid", "replayed"))]),
        20, "valid ones")
    assert sorted(m["message_id"] for m in got) == sorted(valid_ids + ["R" * 26])
    assert bridge.http("GET", "/healthz")[0] == 200
    took.sort()
    print("valid webhooks among hostile ones: p50 %.1f ms, max %.1f ms"
          % (took[len(took) // 2] * 1000, took[-1] * 1000))
