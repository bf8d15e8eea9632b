"""A counting MQTT subscriber, run as its own process by tests:

    python -m tests.simulators.count_subscriber URL TOPIC_FILTER OUT_FILE

Writes ``OUT_FILE.ready`` once the broker acknowledged the subscription, then keeps the number
of messages received in ``OUT_FILE`` (rewritten atomically) until SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt_address import BrokerAddress


def main(url: str, topic_filter: str, out: Path) -> None:
    address = BrokerAddress.parse(url)
    stop = threading.Event()
    count = 0
    lock = threading.Lock()
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bydata-count-{os.getpid()}",
        protocol=mqtt.MQTTv5 if address.v5 else mqtt.MQTTv311,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        c.subscribe(topic_filter, qos=1)

    def on_subscribe(c: mqtt.Client, userdata: object, mid: int, reasons: object, props: object) -> None:
        Path(f"{out}.ready").write_text("ready\n")

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        with lock:
            count += 1

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        while not stop.wait(0.1):
            with lock:
                n = count
            tmp = out.with_suffix(".tmp")
            tmp.write_text(f"{n}\n")
            tmp.replace(out)
    finally:
        client.disconnect()
        client.loop_stop()
        with lock:
            out.write_text(f"{count}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
