"""The whole loop with sinch-sim playing Sinch in both directions: the bridge registers its
webhook, a send's delivery reports come back signed, a "user" writes and taps a button."""

import json

from conftest import wait_until

SECRET = "roundtrip-secret"


def registrations(sim):
    got = sim.call("GET", "/_sim/webhooks")
    return got["webhooks"] if isinstance(got, dict) else got


def test_registration_creates_once_then_updates(world):
    sim = world.start_sim()
    env = dict(SINCH_WEBHOOK_SECRET=SECRET, BRIDGE_REGISTER_WEBHOOK=1)
    bridge = world.bridge(**env)
    bridge.env["BRIDGE_PUBLIC_URL"] = "http://127.0.0.1:%d" % bridge.http_port
    bridge.start()
    (hook,) = registrations(sim)
    assert hook["target"] == "http://127.0.0.1:%d/webhooks/sinch" % bridge.http_port
    assert "MESSAGE_INBOUND" in hook["triggers"] and "MESSAGE_DELIVERY" in hook["triggers"]
    assert bridge.stop() == 0
    bridge.start()
    assert len(registrations(sim)) == 1   # updated, not duplicated
    assert SECRET not in bridge.log()


def test_a_send_comes_back_queued_delivered_read_and_a_user_answers(world):
    sim = world.start_sim("--report-delay-ms", "50")
    bridge = world.bridge(SINCH_WEBHOOK_SECRET=SECRET, BRIDGE_REGISTER_WEBHOOK=1)
    bridge.env["BRIDGE_PUBLIC_URL"] = "http://127.0.0.1:%d" % bridge.http_port
    bridge.start()
    watch = world.client("sinch/sent", "sinch/delivery/#", "sinch/inbound/#")
    watch.publish("sinch/send", json.dumps({
        "id": "alarm-7", "to": "+15551234567",
        "choice": {"text": "Alarm! Freezer 3", "options": ["Acknowledge", "Snooze"]}}))
    sent = wait_until(lambda: watch.json_on("sinch/sent"), 10, "sent")[0]
    topic = "sinch/delivery/whatsapp/15551234567"
    reports = wait_until(lambda: (lambda r: r if len(r) >= 3 else None)(watch.json_on(topic)),
                         15, "three delivery reports")
    assert [r["status"] for r in reports] == ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"]
    assert all(r["id"] == "alarm-7" and r["message_id"] == sent["message_id"] for r in reports)
    # The user taps "Snooze".
    sim.call("POST", "/_sim/inject", {"type": "choice", "from": "15551234567",
                                      "message_id": sent["message_id"],
                                      "postback_data": "alarm-7|1|Snooze"})
    sim.call("POST", "/_sim/inject", {"type": "text", "from": "15551234567",
                                      "text": "I'm on it"})
    got = wait_until(lambda: (lambda m: m if len(m) >= 2 else None)(
        watch.json_on("sinch/inbound/whatsapp/15551234567")), 10, "the tap and the text")
    by_kind = {m["kind"]: m for m in got}
    assert by_kind["choice"]["text"] == "Snooze" and by_kind["choice"]["id"] == "alarm-7"
    assert by_kind["text"]["text"] == "I'm on it"


def test_sinch_retries_what_the_bridge_could_not_take_and_duplicates_are_dropped(world):
    sim = world.start_sim("--webhook-retry-ms", "200")
    bridge = world.bridge(SINCH_WEBHOOK_SECRET=SECRET, BRIDGE_REGISTER_WEBHOOK=1)
    bridge.env["BRIDGE_PUBLIC_URL"] = "http://127.0.0.1:%d" % bridge.http_port
    bridge.start()
    watch = world.client("sinch/inbound/#")
    sim.call("POST", "/_sim/inject", {"type": "text", "from": "15551234567", "text": "dup",
                                      "duplicates": 3})
    sim.call("POST", "/_sim/inject", {"type": "text", "from": "15551234567", "text": "forged",
                                      "signature": "bad"})
    wait_until(lambda: watch.on("sinch/inbound/whatsapp/15551234567"), 10, "the message")
    callbacks = wait_until(lambda: (lambda c: c if len(c) >= 5 else None)(
        sim.call("GET", "/_sim/callbacks?since=0")["callbacks"]), 10, "five callbacks")
    assert sorted(c["status"] for c in callbacks)[:5] == [200, 200, 200, 200, 401]
    texts = [m["text"] for m in watch.json_on("sinch/inbound/whatsapp/15551234567")]
    assert texts == ["dup"]
