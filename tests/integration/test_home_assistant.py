"""Home Assistant MQTT discovery (BRIDGE_HA_DISCOVERY=1), checked against what HA documents:
the topic layout <prefix>/<component>/[<node_id>/]<object_id>/config, each component's required
keys and no key HA does not know, unique ids, one device, availability from P/bridge/state, all
retained. The entities are then used as HA would use them: the notify entity's command topic
sends a WhatsApp text, and the event entities' and sensors' value templates are rendered with
Jinja2 (HA's template engine) over the payloads the bridge really publishes."""

import json
import re
import time

import jinja2
import paho.mqtt.client as mqtt

from conftest import inbound_text, wait_until

SECRET = "ha-secret"
MOM = "+15551234567"
OPS = "+15557654321"

# https://www.home-assistant.io/integrations/mqtt/ (discovery) and the notify, event and sensor
# MQTT platform pages: the keys each accepts (full names) and the ones it requires.
COMMON = {"name", "unique_id", "device", "origin", "availability_topic", "payload_available",
          "payload_not_available", "qos", "icon", "entity_category", "object_id",
          "default_entity_id", "enabled_by_default", "json_attributes_topic",
          "json_attributes_template", "availability_template", "encoding"}
SCHEMA = {
    "notify": ({"command_topic"}, COMMON | {"command_template", "retain"}),
    "event": ({"state_topic", "event_types"}, COMMON | {"value_template", "device_class"}),
    "sensor": ({"state_topic"}, COMMON | {"value_template", "unit_of_measurement",
                                          "state_class", "device_class", "expire_after",
                                          "force_update", "suggested_display_precision"}),
}
DEVICE_KEYS = {"identifiers", "connections", "name", "manufacturer", "model", "sw_version",
               "hw_version", "serial_number", "suggested_area", "via_device",
               "configuration_url", "model_id"}
TOPIC = re.compile(r"^homeassistant/(notify|event|sensor)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$")


def render(template, payload):
    """HA renders a value template with value_json bound to the parsed payload; to_json is HA's
    filter (Jinja2's own is tojson)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    return env.from_string(template).render(value_json=json.loads(payload), value=payload)


def configs(client):
    """The latest config per discovery topic (an empty payload removes the entity)."""
    latest = {}
    with client.lock:
        for m in client.messages:
            if m.topic.startswith("homeassistant/") and m.topic.endswith("/config"):
                latest[m.topic] = m
    return {t: m for t, m in latest.items() if m.payload}


EXPECTED = {
    "notify/sinch_bridge_sinch/mom", "notify/sinch_bridge_sinch/ops",
    "event/sinch_bridge_sinch/mom_inbound", "event/sinch_bridge_sinch/mom_delivery",
    "event/sinch_bridge_sinch/ops_inbound", "event/sinch_bridge_sinch/ops_delivery",
    "sensor/sinch_bridge_sinch/outbox_depth", "sensor/sinch_bridge_sinch/sent_today",
    "sensor/sinch_bridge_sinch/last_error",
}


def test_discovery_follows_the_documented_schema_and_the_entities_work(world):
    sim = world.start_sim("--report-delay-ms", "50")
    bridge = world.bridge(BRIDGE_HA_DISCOVERY=1, BRIDGE_CONTACTS="mom=%s,ops=%s" % (MOM, OPS),
                          SINCH_WEBHOOK_SECRET=SECRET, BRIDGE_REGISTER_WEBHOOK=1,
                          BRIDGE_HEALTH_INTERVAL=1)
    bridge.env["BRIDGE_PUBLIC_URL"] = "http://127.0.0.1:%d" % bridge.http_port
    bridge.start()
    # Once they are all out (the bridge publishes them right after connecting, maybe after this
    # first subscription), a second subscriber can only get them as retained messages.
    first = world.client("homeassistant/#")
    wait_until(lambda: len(configs(first)) >= len(EXPECTED), 10, "the discovery configs")
    ha = world.client("homeassistant/#")
    found = wait_until(lambda: (lambda c: c if len(c) >= len(EXPECTED) else None)(configs(ha)),
                       10, "the retained discovery configs")
    assert {t[len("homeassistant/"):-len("/config")] for t in found} == EXPECTED
    unique_ids = set()
    by_object = {}
    for topic, msg in found.items():
        assert msg.retain, topic
        component, node, obj = TOPIC.match(topic).groups()
        assert node == "sinch_bridge_sinch"
        cfg = json.loads(msg.payload)
        required, allowed = SCHEMA[component]
        assert required <= set(cfg), (topic, required - set(cfg))
        assert set(cfg) <= allowed | required, (topic, set(cfg) - allowed - required)
        assert cfg["unique_id"] not in unique_ids
        unique_ids.add(cfg["unique_id"])
        assert set(cfg["device"]) <= DEVICE_KEYS
        assert cfg["device"]["identifiers"] == ["sinch_bridge_sinch"]
        assert cfg["device"]["name"] == "Sinch bridge" and cfg["device"]["sw_version"]
        assert cfg["origin"]["name"] == "sinch-bridge" and cfg["origin"]["sw_version"]
        assert cfg["availability_topic"] == "sinch/bridge/state"
        assert (cfg["payload_available"], cfg["payload_not_available"]) == ("online", "offline")
        for key in ("command_topic", "state_topic", "json_attributes_topic"):
            if key in cfg:
                assert key != "command_topic" or "+" not in cfg[key]
                assert cfg[key].startswith("sinch/")
        by_object[obj] = cfg

    watch = world.client("sinch/#")
    # HA's notify.send_message publishes the message text as is on the command topic.
    watch.publish(by_object["mom"]["command_topic"], "Freezer 3 is at -4 C")
    sent = wait_until(lambda: watch.json_on("sinch/sent"), 10, "the notify send")[0]
    body = sim.accepted_sends()[0]["body"]
    assert body["recipient"]["identified_by"]["channel_identities"][0]["identity"] == MOM[1:]
    assert body["message"]["text_message"]["text"] == "Freezer 3 is at -4 C"

    # The delivery event entity: its topic filter matches, its template yields a known type.
    delivery = by_object["mom_delivery"]
    reports = wait_until(lambda: [m for m in watch.messages
                                  if mqtt.topic_matches_sub(delivery["state_topic"], m.topic)
                                  and json.loads(m.payload)["status"] == "READ"], 15, "READ")
    event = json.loads(render(delivery["value_template"], reports[0].payload))
    assert event["event_type"] == "READ" and event["event_type"] in delivery["event_types"]
    assert event["message_id"] == sent["message_id"] and event["to"] == MOM

    # The inbound event entity, with mom writing back.
    assert bridge.webhook(inbound_text("I'm on it", MOM[1:], "HA-IN-1"), secret=SECRET)[0] == 200
    inbound = by_object["mom_inbound"]
    got = wait_until(lambda: [m for m in watch.messages
                              if mqtt.topic_matches_sub(inbound["state_topic"], m.topic)], 10,
                     "mom's message")
    event = json.loads(render(inbound["value_template"], got[0].payload))
    assert event["event_type"] == "text" and event["event_type"] in inbound["event_types"]
    assert event["text"] == "I'm on it" and event["from"] == MOM
    assert not [m for m in watch.messages
                if mqtt.topic_matches_sub(by_object["ops_inbound"]["state_topic"], m.topic)]

    # Sensors over the real health and error payloads.
    health = wait_until(lambda: [m for m in watch.on("sinch/bridge/health")
                                 if json.loads(m.payload)["counters"]["sent"] >= 1], 10,
                        "a health publish after the send")[-1]
    assert render(by_object["sent_today"]["value_template"], health.payload) == "1"
    assert render(by_object["outbox_depth"]["value_template"], health.payload) == "0"
    watch.publish("sinch/send", "{not json")
    error = wait_until(lambda: watch.on("sinch/error"), 10, "an error")[0]
    assert render(by_object["last_error"]["value_template"], error.payload) == "invalid_command"


def test_discovery_again_when_home_assistant_comes_online_and_on_request(world):
    world.start_sim()
    world.bridge(BRIDGE_HA_DISCOVERY=1, BRIDGE_CONTACTS="mom=" + MOM).start()
    ha = world.client("homeassistant/#", "sinch/bridge/response/#")
    wait_until(lambda: len(configs(ha)) == 6, 10, "the configs")

    def configs_since(count):
        # Config publishes only: the client also gets its own homeassistant/status messages.
        return [m for m in ha.messages[count:] if m.topic.endswith("/config")]

    count = len(ha.messages)
    ha.publish("homeassistant/status", "online")
    wait_until(lambda: len(configs_since(count)) >= 6, 10, "the configs after HA's birth")
    count = len(ha.messages)
    ha.publish("homeassistant/status", "offline")       # HA's will: nothing to do
    ha.publish("sinch/bridge/request/resend_discovery", json.dumps({"transaction": "d"}))
    answer = wait_until(lambda: ha.json_on("sinch/bridge/response/resend_discovery"), 10,
                        "the answer")[0]
    assert answer == {"status": "ok", "data": {}, "transaction": "d"}
    wait_until(lambda: len(configs_since(count)) >= 6, 10, "the configs on request")
    time.sleep(0.3)  # nothing more may follow: not a seventh, not a second round
    assert len(configs_since(count)) == 6


def test_a_reload_retracts_the_entities_of_a_removed_alias(world):
    import os
    import signal
    world.start_sim()
    bridge = world.bridge(BRIDGE_HA_DISCOVERY=1)
    conf = os.path.join(world.workdir, "bridge.env")
    with open(conf, "w") as f:
        f.write("BRIDGE_CONTACTS=mom=%s,ops=%s\n" % (MOM, OPS))
    bridge.args = ["--config", conf]
    bridge.start()
    ha = world.client("homeassistant/#")
    wait_until(lambda: len(configs(ha)) == 9, 10, "the configs")
    with open(conf, "w") as f:
        f.write("BRIDGE_CONTACTS=mom=%s\n" % MOM)
    bridge.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: len(configs(ha)) == 6, 10, "ops's entities retracted")
    assert not [t for t in configs(ha) if "/ops" in t]
    # Retracted for good: a new subscriber sees no retained config of ops.
    late = world.client("homeassistant/#")
    wait_until(lambda: len(configs(late)) == 6, 10, "the retained configs")
    assert not [t for t in configs(late) if "/ops" in t]
