"""amsreader JSON (UtilitechAS/amsreader-firmware ``src/mqtt/JsonMqttHandler.cpp``).

``{"id": "<mac>", "name": …, "up": <s>, "t": <epoch>, "vcc": …, "rssi": …, "temp": …,
"data": {"P": 1234, …}, "realtime": {…}}``. List 1 carries ``P`` only; list 2 adds
``lv, meterId/id, type, Q, PO, QO, I1-I3, U1-U3``; list 3 adds the counters ``tPI, tPO,
tQI, tQO`` (kWh) and ``rtc``. Every scalar in ``data`` becomes a reading at ``t``;
``realtime`` (derived accumulations) and the reader's own vcc/rssi/temp are not read.
The same topic also carries system, temperature and price messages without ``data``:
they decode to ``kind="status"`` with no readings.
"""

from __future__ import annotations

from ingest._build import decoded, reading
from ingest.envelopes._common import epoch_time, expect_object, loads
from ingest.sources import Source
from ingest.types import Decoded, DecodeError, RawMessage

NAME = "amsreader"


def decode(raw: RawMessage, source: Source) -> Decoded:
    doc = expect_object(loads(raw.payload, "amsreader message"), "amsreader message")
    mac = doc.get("id")
    if source.device_id_from == "topic":
        device_id = source.topic_device_id(raw.topic)
    elif isinstance(mac, str) and mac:
        device_id = mac
    else:
        device_id = source.topic_device_id(raw.topic)

    data = doc.get("data")
    if data is None:
        return decoded(device_id or "", (), source.device_model, "status", {})
    if not isinstance(data, dict):
        raise DecodeError("amsreader data is not an object")
    if not device_id:
        raise DecodeError("amsreader message has no id and the topic names no device")

    time = None
    stamp = doc.get("t")
    # t is the meter's package time; 0 means the meter sent none.
    if stamp is not None and stamp != 0:
        time = epoch_time(stamp, "amsreader t")
    readings = tuple(reading(name, value, None, time) for name, value in data.items())
    return decoded(device_id, readings, source.device_model, "state", {})
