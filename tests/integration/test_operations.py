"""Operations: the control plane (P/bridge/request/<action> answered on P/bridge/response/<action>
with the caller's transaction), P/bridge/health every BRIDGE_HEALTH_INTERVAL, and SIGHUP
reloading contacts, allow list, limits and log level without dropping the MQTT session or the
listener (a reload that does not load keeps the old configuration and says why)."""

import json
import os
import signal

from conftest import inbound_text, wait_until

SECRET = "ops-secret"
MOM = "+15551234567"
DAD = "+15557654321"


def ask(client, action, body=None, raw=None):
    """Publishes a request and returns its answer (the first one on the response topic since)."""
    topic = "sinch/bridge/response/" + action
    before = len(client.on(topic))
    client.publish("sinch/bridge/request/" + action,
                   raw if raw is not None else json.dumps(body or {}))
    return wait_until(lambda: client.json_on(topic)[before:], 10, "the answer to " + action)[0]


def test_each_action_answers_with_the_transaction(world):
    world.start_sim()
    bridge = world.bridge(BRIDGE_CONTACTS="mom=" + MOM, SINCH_WEBHOOK_SECRET=SECRET).start()
    c = world.client("sinch/bridge/response/#", "sinch/sent")

    got = ask(c, "health_check", {"transaction": "t-1"})
    assert got["status"] == "ok" and got["transaction"] == "t-1"
    assert got["data"]["mqtt"] == "connected" and got["data"]["uptime_s"] >= 0
    assert set(got["data"]) >= {"uptime_s", "mqtt", "sinch", "store", "counters"}

    # Discovery is off here: an error that says so, with the transaction (any JSON value).
    got = ask(c, "resend_discovery", {"transaction": {"n": 7}})
    assert got["status"] == "error" and "BRIDGE_HA_DISCOVERY" in got["error"]
    assert got["transaction"] == {"n": 7}

    got = ask(c, "reload", {"transaction": 3})
    assert got == {"status": "ok", "data": {"changed": [], "restart_needed": []},
                   "transaction": 3}

    # Two sends to mom and one message from her, then the history, newest first.
    for i, text in enumerate(["first", "second"]):
        c.publish("sinch/send/mom", text)
        wait_until(lambda: len(c.json_on("sinch/sent")) > i, 10, "sent %d" % i)
    assert bridge.webhook(inbound_text("on it", MOM[1:], "IN-1"), secret=SECRET)[0] == 200
    got = ask(c, "history", {"contact": "mom", "limit": 20, "transaction": "h"})
    assert got["status"] == "ok" and got["transaction"] == "h"
    assert got["data"]["contact"] == "mom" and got["data"]["number"] == MOM
    msgs = got["data"]["messages"]
    assert [(m["direction"], m.get("text")) for m in msgs] == [
        ("in", "on it"), ("out", "second"), ("out", "first")]
    sent_ids = [s["message_id"] for s in c.json_on("sinch/sent")]
    assert [m["message_id"] for m in msgs[1:]] == sent_ids[::-1]
    assert all(m["status"] == "ACCEPTED" for m in msgs[1:])
    assert "raw" not in msgs[0] and msgs[0]["kind"] == "text"
    # The same contact by number, and the limit.
    got = ask(c, "history", {"contact": MOM[1:], "limit": 1})
    assert [m["text"] for m in got["data"]["messages"]] == ["on it"]

    # Bad requests: an error each, nothing else disturbed.
    for action, raw, words in [
            ("history", json.dumps({"limit": 5}), "contact"),
            ("history", json.dumps({"contact": "mom", "limit": "ten"}), "limit"),
            ("history", json.dumps({"contact": "mom", "limit": 100000}), "limit"),
            ("health_check", "{not json", "not JSON"),
            ("health_check", "[1, 2]", "object"),
            ("self_destruct", json.dumps({"transaction": 9}), "unknown action")]:
        got = ask(c, action, raw=raw)
        assert got["status"] == "error" and words in got["error"], (action, raw, got)
        assert got["data"] == {}
    assert got["transaction"] == 9
    c.publish("sinch/send/mom", "still working")
    wait_until(lambda: len(c.json_on("sinch/sent")) == 3, 10, "a send after the bad requests")


def test_health_is_published_every_interval(world):
    world.start_sim()
    world.bridge(BRIDGE_HEALTH_INTERVAL=1).start()
    c = world.client("sinch/bridge/health", "sinch/sent")
    c.publish("sinch/send/15551234567", "counted")
    wait_until(lambda: c.json_on("sinch/sent"), 10, "the send")
    health = wait_until(lambda: [h for h in c.json_on("sinch/bridge/health")
                                 if h["counters"]["sent"] == 1][-2:][1:], 10,
                        "two health publishes after the send")[0]
    assert health["mqtt"] == "connected"
    assert health["sinch"] == {"last_status": 200, "token": "valid"}
    assert health["store"] == {"outbox_depth": 0, "inbox_depth": 0}
    counters = health["counters"]
    assert counters["received"] == 1 and counters["sent_today"] == 1
    assert counters["failed"] == 0 and counters["failed_by"] == {}
    assert set(counters["webhooks"]) >= {"stored", "duplicate", "bad_signature"}


def write_config(path, **values):
    with open(path, "w") as f:
        for k, v in values.items():
            f.write("%s=%s\n" % (k, v))


def test_sighup_reloads_contacts_limits_and_log_level(world):
    sim = world.start_sim()
    bridge = world.bridge()
    conf = os.path.join(world.workdir, "bridge.env")
    write_config(conf, BRIDGE_CONTACTS="mom=" + MOM, BRIDGE_RATE_LIMIT="0.2",
                 BRIDGE_ALLOW_TO="+1555*", BRIDGE_LOG_LEVEL="notice")
    bridge.args = ["--config", conf]
    bridge.start()
    c = world.client("sinch/sent", "sinch/error", "sinch/bridge/info", "sinch/bridge/state")

    c.publish("sinch/send/dad", "hello dad")
    err = wait_until(lambda: c.json_on("sinch/error"), 10, "dad unknown")[0]
    assert err["error"]["code"] == "invalid_recipient"
    c.publish("sinch/send/46700000000", "not allowed")
    wait_until(lambda: len(c.json_on("sinch/error")) == 2, 10, "the allow list")
    assert c.json_on("sinch/error")[1]["error"]["code"] == "not_allowed"
    # 0.2 a second: one now, the others one every five seconds.
    for i in range(5):
        c.publish("sinch/send/mom", "slow %d" % i)
    wait_until(lambda: c.json_on("sinch/sent"), 10, "the first paced send")

    write_config(conf, BRIDGE_CONTACTS="mom=%s,dad=%s" % (MOM, DAD), BRIDGE_RATE_LIMIT="0",
                 BRIDGE_LOG_LEVEL="debug", BRIDGE_TOPIC_PREFIX="elsewhere")
    bridge.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded: " in bridge.log(), 10, "the reload")
    log = bridge.log()
    assert "BRIDGE_RATE_LIMIT" in log and "BRIDGE_CONTACTS" in log
    assert "need a restart and keep their value: BRIDGE_TOPIC_PREFIX" in log
    # Unlimited now: the four waiting sends go at once (they would need 20 s at 0.2/s).
    wait_until(lambda: len(c.json_on("sinch/sent")) == 5, 8, "the paced sends, unpaced")
    c.publish("sinch/send/dad", "hello dad")
    wait_until(lambda: len(c.json_on("sinch/sent")) == 6, 10, "dad, now known")
    assert sim.accepted_sends()[-1]["body"]["recipient"]["identified_by"]["channel_identities"][0][
        "identity"] == DAD[1:]
    c.publish("sinch/send/46700000000", "allowed now")
    wait_until(lambda: len(c.json_on("sinch/sent")) == 7, 10, "the allow list lifted")
    info = wait_until(lambda: [i for i in c.json_on("sinch/bridge/info")
                               if "dad" in i["contacts"]], 10, "the new info")[0]
    assert info["topic_prefix"] == "sinch"
    assert "debug" in bridge.log().split("reloaded: ")[1]   # debug lines after the reload

    # A configuration that does not load changes nothing and says why.
    write_config(conf, BRIDGE_CONTACTS="mom=" + MOM, BRIDGE_RATE_LIMIT="fast")
    bridge.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "did not load, nothing changed" in bridge.log(), 10, "the failed reload")
    assert "BRIDGE_RATE_LIMIT" in bridge.log().split("did not load")[1].splitlines()[0]
    c.publish("sinch/send/dad", "dad still known")
    wait_until(lambda: len(c.json_on("sinch/sent")) == 8, 10, "dad after the failed reload")

    # Neither the MQTT session nor the listener was dropped.
    assert bridge.log().count("connected to mqtt://") == 1
    assert [m.payload for m in c.on("sinch/bridge/state")] == [b"online"]
    assert bridge.http("GET", "/healthz")[0] == 200
    assert bridge.proc.poll() is None


def test_no_secret_is_logged_or_published_even_at_debug(world):
    """Promise 4: keys, tokens and the webhook secret never reach a log line or a topic, with
    every log line on and every kind of traffic going: sends, a token fetch, webhooks (good
    and badly signed), control requests, health, discovery."""
    world.start_sim()
    # The harness's key secret is "sim-secret", the simulator's: a real token is fetched.
    bridge = world.bridge(BRIDGE_LOG_LEVEL="debug", SINCH_WEBHOOK_SECRET=SECRET,
                          BRIDGE_HA_DISCOVERY=1, BRIDGE_CONTACTS="mom=" + MOM,
                          BRIDGE_HEALTH_INTERVAL=1)
    bridge.start()
    c = world.client("#")
    c.publish("sinch/send/mom", "hello")
    wait_until(lambda: c.on("sinch/sent"), 10, "the send")
    assert bridge.webhook(inbound_text("hi", MOM[1:], "S-1"), secret=SECRET)[0] == 200
    assert bridge.webhook(inbound_text("hi", MOM[1:], "S-2"), secret="wrong")[0] == 401
    ask(c, "health_check")
    ask(c, "reload")
    wait_until(lambda: c.on("sinch/bridge/health"), 10, "a health publish")
    bridge.stop()
    published = b"".join(m.topic.encode() + m.payload for m in c.messages)
    log = bridge.log()
    assert log.count(" debug ") > 10        # the log really was at debug
    assert "Bearer" not in log and "access_token" not in log
    for secret in ("sim-secret", SECRET):
        assert secret not in log, secret
        assert secret.encode() not in published, secret


def test_json_logs_name_the_command_and_sigint_stops_cleanly(world):
    world.start_sim()
    bridge = world.bridge(BRIDGE_LOG_FORMAT="json").start()
    c = world.client("sinch/sent", "sinch/bridge/state")
    c.publish("sinch/send", json.dumps({"id": "log-me-1", "to": MOM, "text": "hi"}))
    sent = wait_until(lambda: c.json_on("sinch/sent"), 10, "the send")[0]
    bridge.proc.send_signal(signal.SIGINT)
    assert bridge.proc.wait(20) == 0
    wait_until(lambda: [m for m in c.on("sinch/bridge/state") if m.payload == b"offline"], 10,
               "offline after SIGINT")
    lines = [json.loads(line) for line in bridge.log().splitlines() if line.strip()]
    assert lines and all(set(line) == {"time", "level", "module", "msg"} for line in lines)
    assert [line for line in lines
            if "log-me-1" in line["msg"] and sent["message_id"] in line["msg"]]
