"""Sinch failing: retries with backoff until it recovers, pacing, token refresh, final errors."""

import json
import time
from collections import Counter

from conftest import wait_until


def test_sinch_answering_503_for_ten_seconds_loses_nothing(running):
    world, bridge, watch = running
    world.sim.faults({"match": "send", "count": -1, "status": 503})
    for i in range(20):
        watch.publish("sinch/send", json.dumps({"id": "u%d" % i, "to": "+15551234567",
                                                "text": "during the outage"}))
    time.sleep(10)
    assert watch.on("sinch/sent") == [] and watch.on("sinch/error") == []
    world.sim.clear_faults()
    wait_until(lambda: len(watch.on("sinch/sent")) == 20, 20, "20 sent after the outage")
    sent = watch.json_on("sinch/sent")
    ids = {"u%d" % i for i in range(20)}
    assert {o["id"] for o in sent} == ids
    assert watch.on("sinch/error") == []
    # Each outcome's attempts are the requests the simulator saw for it; the 503s slowed the
    # bucket (as a 429 does), so not every command was tried during the outage, but some were.
    tried = Counter(i for i in (json.loads(r["body"]["message_metadata"])["id"]
                                for r in world.sim.requests("send")) if i in ids)
    assert {o["id"]: o["attempts"] for o in sent} == dict(tried)
    assert max(tried.values()) > 1


def test_429_with_retry_after_is_honoured(running):
    world, bridge, watch = running
    world.sim.faults({"match": "send", "count": 1, "status": 429, "retry_after": "2"})
    t0 = time.monotonic()
    watch.publish("sinch/send/15551234567", "slow down")
    wait_until(lambda: watch.on("sinch/sent"), 10, "sent after the 429")
    assert time.monotonic() - t0 >= 1.9
    (sent,) = watch.json_on("sinch/sent")
    assert sent["attempts"] == 2
    sends = world.sim.requests("send")
    assert [r["status"] for r in sends] == [429, 200]
    assert sends[1]["time_ms"] - sends[0]["time_ms"] >= 1900


def test_an_expired_token_is_refreshed_and_the_send_retried_once(running):
    world, bridge, watch = running
    watch.publish("sinch/send/15551234567", "first")
    wait_until(lambda: watch.on("sinch/sent"), 10, "the first send")
    world.sim.call("POST", "/_sim/tokens/expire")
    watch.publish("sinch/send", json.dumps({"id": "after-expiry", "to": "+15551234567",
                                            "text": "second"}))
    sent = wait_until(lambda: [o for o in watch.json_on("sinch/sent")
                               if o["id"] == "after-expiry"], 10, "the second send")[0]
    assert sent["attempts"] == 2   # the 401 and the retry with a fresh token
    assert world.sim.stats()["tokens_issued"] == 2


def test_wrong_credentials_are_auth_failed_and_not_retried(world):
    world.start_sim()
    world.bridge(SINCH_KEY_SECRET="not-the-secret").start()
    watch = world.client("sinch/error")
    watch.publish("sinch/send/15551234567", "x")
    err = wait_until(lambda: watch.json_on("sinch/error"), 10, "the error")[0]
    assert err["error"]["code"] == "auth_failed"
    assert world.sim.requests("send") == []
    assert "not-the-secret" not in world.bridges[0].log()


def test_basic_auth_sends_without_tokens(world):
    world.start_sim()
    world.bridge(SINCH_AUTH="basic").start()
    watch = world.client("sinch/sent")
    watch.publish("sinch/send/15551234567", "x")
    wait_until(lambda: watch.on("sinch/sent"), 10, "sent")
    assert world.sim.requests("token") == []
    assert world.sim.accepted_sends()[0]["auth"] == "basic"


def test_ttl_ends_as_expired_while_sinch_is_down(running):
    world, bridge, watch = running
    world.sim.faults({"match": "send", "count": -1, "status": 503})
    watch.publish("sinch/send", json.dumps({"id": "short", "to": "+15551234567", "text": "x",
                                            "ttl": 3}))
    err = wait_until(lambda: watch.json_on("sinch/error"), 15, "the expiry")[0]
    assert err["id"] == "short"
    assert err["error"]["code"] == "expired"
    assert err["error"]["http_status"] == 503
    assert err["attempts"] >= 2
    sends = world.sim.requests("send")
    assert all(r["body"]["ttl"].endswith("s") and int(r["body"]["ttl"][:-1]) >= 3
               for r in sends)


def test_network_errors_are_retried(world):
    world.start_sim()
    world.bridge(BRIDGE_SINCH_TIMEOUT="1").start()
    watch = world.client("sinch/sent")
    # "partial": the answer breaks off mid-body (a plain drop of a kept-alive connection makes
    # curl re-send by itself, which would hide one attempt from the count).
    world.sim.faults({"match": "send", "count": 2, "partial": True},
                     {"match": "send", "count": 1, "delay_ms": 2500})
    watch.publish("sinch/send/15551234567", "through the storm")
    sent = wait_until(lambda: watch.json_on("sinch/sent"), 20, "sent")[0]
    # Two broken answers, one too late for BRIDGE_SINCH_TIMEOUT, then accepted.
    assert len(world.sim.requests("send")) == 4
    assert sent["attempts"] == 4


def test_rate_limit_paces_sends(world):
    world.start_sim()
    world.bridge(BRIDGE_RATE_LIMIT="5").start()
    watch = world.client("sinch/sent")
    for i in range(20):
        watch.publish("sinch/send/15551234567", "paced %d" % i, wait=False)
    wait_until(lambda: len(watch.on("sinch/sent")) == 20, 20, "20 sent")
    times = sorted(r["time_ms"] for r in world.sim.accepted_sends())
    # A burst of one second's worth (5), then 5 a second: 20 sends take at least 2.8 s.
    assert times[-1] - times[0] >= 2800
    for i in range(len(times)):
        window = [t for t in times if times[i] <= t < times[i] + 1000]
        assert len(window) <= 10   # never more than burst + rate inside any second
