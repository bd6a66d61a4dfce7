"""MQTT send commands reach sinch-sim as Sinch expects them, and each gets one outcome."""

import json

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import wait_until


def one_outcome(watch, topic, pred=lambda o: True, timeout=10):
    return wait_until(lambda: [o for o in watch.json_on(topic) if pred(o)], timeout,
                      "an outcome on " + topic)[0]


def test_plain_text_to_a_number_is_sent(running):
    world, bridge, watch = running
    watch.publish("sinch/send/15551234567", "Freezer 3 is at -4 C")
    sent = one_outcome(watch, "sinch/sent")
    assert sent["to"] == "+15551234567"
    assert sent["channel"] == "WHATSAPP"
    assert sent["attempts"] == 1
    assert len(sent["message_id"]) == 26
    assert sent["accepted_time"]
    assert len(sent["id"]) == 36  # a generated UUID
    (req,) = world.sim.accepted_sends()
    body = req["body"]
    assert body["app_id"] == "sim-app"
    assert body["recipient"] == {"identified_by": {"channel_identities": [
        {"channel": "WHATSAPP", "identity": "15551234567"}]}}
    assert body["message"] == {"text_message": {"text": "Freezer 3 is at -4 C"}}
    assert json.loads(body["message_metadata"]) == {"id": sent["id"]}
    assert req["message_id"] == sent["message_id"]
    assert world.sim.stats()["tokens_issued"] == 1


def test_json_command_keeps_its_id_and_metadata(running):
    world, bridge, watch = running
    watch.publish("sinch/send", json.dumps({
        "id": "freezer-alarm-42", "to": "+15551234567", "text": "Freezer 3 is at -4 C",
        "metadata": "cold-chain", "ttl": 3600}))
    sent = one_outcome(watch, "sinch/sent")
    assert sent["id"] == "freezer-alarm-42"
    body = world.sim.accepted_sends()[0]["body"]
    assert json.loads(body["message_metadata"]) == {"id": "freezer-alarm-42",
                                                    "metadata": "cold-chain"}
    assert body["ttl"] in ("3600s", "3599s")
    assert body["correlation_id"] == "freezer-alarm-42"


def test_every_content_form_is_accepted_by_the_strict_simulator(running):
    world, bridge, watch = running
    commands = [
        {"id": "t", "text": "hello"},
        {"id": "m", "media": {"url": "https://example.com/a.jpg"}},
        {"id": "mc", "media": {"url": "https://example.com/a.jpg", "caption": "Cam 3"}},
        {"id": "tp", "template": {"id": "freezer_alarm", "language": "en_US",
                                  "params": {"body[1]text": "Freezer 3"}}},
        {"id": "ch", "text": "x", "channels": ["WHATSAPP", "SMS"]},
        {"id": "sm", "channel": "SMS", "template": {"id": "01J0S3C4DWA7N36096Q14DR9GP"}},
        {"id": "c", "choice": {"text": "Alarm!", "options": ["Acknowledge", "Snooze"]}},
        {"id": "l", "location": {"lat": 59.33, "lon": 18.06, "title": "Warehouse 2"}},
        {"id": "r", "message": {"contact_info_message": {
            "name": {"full_name": "Night shift"},
            "phone_numbers": [{"phone_number": "+46701112233"}]}}},
    ]
    for c in commands:
        c["to"] = "+46701234567"
        watch.publish("sinch/send", json.dumps(c))
    wait_until(lambda: len(watch.on("sinch/sent")) + len(watch.on("sinch/error"))
               == len(commands), 10, "every outcome")
    assert watch.json_on("sinch/error") == []
    by_id = {json.loads(r["body"]["message_metadata"])["id"]: r["body"]
             for r in world.sim.accepted_sends()}
    assert by_id["mc"]["message"] == {"card_message": {
        "description": "Cam 3", "media_message": {"url": "https://example.com/a.jpg"}}}
    assert by_id["tp"]["message"]["template_message"]["channel_template"]["WHATSAPP"][
        "language_code"] == "en_US"
    assert by_id["sm"]["message"]["template_message"]["omni_template"]["version"] == "latest"
    assert by_id["ch"]["channel_priority_order"] == ["WHATSAPP", "SMS"]
    choices = by_id["c"]["message"]["choice_message"]["choices"]
    assert [c["postback_data"] for c in choices] == ["c|0|Acknowledge", "c|1|Snooze"]


def test_invalid_command_between_two_valid_ones_disturbs_neither(running):
    world, bridge, watch = running
    watch.publish("sinch/send", json.dumps({"id": "first", "to": "+15551230001", "text": "1"}))
    watch.publish("sinch/send", b"{oops not json")
    watch.publish("sinch/send", json.dumps({"id": "third", "to": "+15551230003", "text": "3"}))
    wait_until(lambda: len(watch.on("sinch/sent")) == 2 and len(watch.on("sinch/error")) == 1,
               10, "two sent and one error")
    assert sorted(o["id"] for o in watch.json_on("sinch/sent")) == ["first", "third"]
    (err,) = watch.json_on("sinch/error")
    assert err["id"] is None
    assert err["error"]["code"] == "invalid_command"
    assert err["topic"] == "sinch/send"
    assert err["excerpt"] == "{oops not json"
    assert err["attempts"] == 0
    assert len(world.sim.accepted_sends()) == 2


def test_refusals_carry_their_codes_and_send_nothing(world):
    world.start_sim()
    world.bridge(BRIDGE_ALLOW_TO="+4670*", BRIDGE_CONTACTS="mom=+46701234567").start()
    watch = world.client("sinch/sent", "sinch/error")
    cases = [
        ("sinch/send", json.dumps({"id": "a", "to": "+15551234567", "text": "x"}),
         "not_allowed"),
        ("sinch/send", json.dumps({"id": "b", "to": "12", "text": "x"}), "invalid_recipient"),
        ("sinch/send", json.dumps({"id": "c", "to": "mom", "text": "x", "media": {
            "url": "https://example.com/a.jpg"}}), "invalid_command"),
        ("sinch/send/nobody", "hi", "invalid_recipient"),
        ("sinch/send/mom", json.dumps({"id": "e", "to": "+46701234567", "text": "x"}),
         "invalid_command"),
        ("sinch/send/mom", b"\xff\xfe invalid utf-8", "invalid_command"),
        ("sinch/send", b"x" * (64 * 1024 + 1), "invalid_command"),
    ]
    for topic, payload, _ in cases:
        watch.publish(topic, payload)
    wait_until(lambda: len(watch.on("sinch/error")) == len(cases), 10, "every error")
    errors = watch.json_on("sinch/error")  # one at a time, in order: one loop owns them
    assert [e["error"]["code"] for e in errors] == [c[2] for c in cases]
    assert errors[5]["id"] is None and errors[5]["excerpt"] == "\ufffd\ufffd invalid utf-8"
    assert errors[6]["id"] is None and len(errors[6]["excerpt"]) == 256
    assert all(e["attempts"] == 0 for e in errors)
    assert watch.on("sinch/sent") == []
    assert world.sim.requests("send") == []


def test_alias_topic_sends_to_its_number_and_names_the_alias(world):
    world.start_sim()
    world.bridge(BRIDGE_CONTACTS="mom=+46701234567").start()
    watch = world.client("sinch/sent")
    watch.publish("sinch/send/mom", "Dinner at 7?")
    sent = one_outcome(watch, "sinch/sent")
    assert sent["to"] == "+46701234567" and sent["alias"] == "mom"
    ident = world.sim.accepted_sends()[0]["body"]["recipient"]["identified_by"]
    assert ident["channel_identities"][0]["identity"] == "46701234567"


def test_response_topic_gets_the_outcome_with_correlation_data(running):
    world, bridge, watch = running
    me = world.client("reply/me")
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "reply/me"
    props.CorrelationData = b"\x00corr-42"
    me.publish("sinch/send/15551234567", "with a reply", properties=props)
    wait_until(lambda: me.on("reply/me"), 10, "the reply")
    (reply,) = me.on("reply/me")
    assert json.loads(reply.payload)["to"] == "+15551234567"
    assert reply.properties.CorrelationData == b"\x00corr-42"
    assert len(watch.on("sinch/sent")) == 1


def test_dedupe_key_sends_once_inside_its_window(running):
    world, bridge, watch = running
    for i in range(3):
        watch.publish("sinch/send", json.dumps({"id": "d%d" % i, "to": "+15551234567",
                                                "text": "door open", "dedupe_key": "door-1",
                                                "dedupe_window": 600}))
    wait_until(lambda: len(watch.on("sinch/sent")) + len(watch.on("sinch/error")) == 3, 10,
               "three outcomes")
    assert [o["id"] for o in watch.json_on("sinch/sent")] == ["d0"]
    assert sorted(o["error"]["code"] for o in watch.json_on("sinch/error")) == ["duplicate"] * 2
    assert len(world.sim.accepted_sends()) == 1


def test_recipient_limit_counts_sends_per_hour(world):
    world.start_sim()
    world.bridge(BRIDGE_RECIPIENT_LIMIT="2").start()
    watch = world.client("sinch/sent", "sinch/error")
    for i in range(3):
        watch.publish("sinch/send/15551234567", "n%d" % i)
    watch.publish("sinch/send/15550000000", "other recipient")
    wait_until(lambda: len(watch.on("sinch/sent")) + len(watch.on("sinch/error")) == 4, 10,
               "four outcomes")
    assert len(watch.on("sinch/sent")) == 3
    (err,) = watch.json_on("sinch/error")
    assert err["error"]["code"] == "rate_limited"


def test_sinch_rejection_is_final_and_carries_sinch_error(running):
    world, bridge, watch = running
    # The simulator's app has no KAKAOTALK channel: Sinch answers 400 INVALID_ARGUMENT.
    watch.publish("sinch/send", json.dumps({"id": "k", "to": "+15551234567", "text": "x",
                                            "channel": "KAKAOTALK"}))
    err = one_outcome(watch, "sinch/error")
    assert err["error"]["code"] == "sinch_rejected"
    assert err["error"]["http_status"] == 400
    assert err["error"]["sinch"]["status"] == "INVALID_ARGUMENT"
    assert err["attempts"] == 1
    assert len(world.sim.requests("send")) == 1  # not retried


def test_mqtt_311_works_too(world):
    world.start_sim()
    world.bridge(MQTT_VERSION="3.1.1").start()
    watch = world.client("sinch/sent", version=mqtt.MQTTv311)
    watch.publish("sinch/send/15551234567", "over 3.1.1")
    assert one_outcome(watch, "sinch/sent")["to"] == "+15551234567"


def test_state_and_info_are_retained_and_offline_after_a_clean_stop(running):
    world, bridge, watch = running
    late = world.client("sinch/bridge/state", "sinch/bridge/info")
    wait_until(lambda: late.on("sinch/bridge/info"), 5, "the retained info")
    assert late.on("sinch/bridge/state")[-1].payload == b"online"
    info = json.loads(late.on("sinch/bridge/info")[-1].payload)
    assert info["api_version"] == 1 and info["app_id"] == "sim-app"
    assert info["topic_prefix"] == "sinch"
    assert "sim-secret" not in json.dumps(info)
    assert bridge.stop() == 0
    wait_until(lambda: late.on("sinch/bridge/state")[-1].payload == b"offline", 5, "offline")
    assert "sim-secret" not in bridge.log()
