"""LoRaWAN network-server envelopes: The Things Stack v3 uplink and ChirpStack v4 ``event/up``.

Both use the protobuf JSON mapping, which leaves out fields whose value is ``""``, ``0`` or
``false``; so do these encoders (a first uplink with ``f_cnt`` 0 has no ``f_cnt``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from simulators.timefmt import iso_nano_offset, iso_nano_z


@dataclass(frozen=True, slots=True)
class GatewayRx:
    """One gateway's reception of an uplink (what differs between two copies of one uplink)."""

    gateway_id: str
    eui: str
    rssi: int
    snr: float
    timestamp: int  # the concentrator's microsecond counter
    lat: float
    lon: float


def _compact(obj: dict[str, Any]) -> dict[str, Any]:
    # 0.0 and False compare equal to 0: one test covers the protobuf JSON zero values.
    return {k: v for k, v in obj.items() if v not in ("", 0, None)}


def b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def tts_uplink(
    *,
    device_id: str,
    application_id: str,
    dev_eui: str,
    join_eui: str,
    dev_addr: str,
    received_at: datetime,
    f_port: int,
    f_cnt: int,
    frm_payload: bytes | str,
    gateways: Sequence[GatewayRx],
    version_ids: Mapping[str, str],
    correlation_ids: Sequence[str],
    session_key_id: str,
    decoded_payload: Mapping[str, Any] | None = None,
    spreading_factor: int = 9,
    frequency: int = 867_300_000,
    tenant_id: str = "ttn",
) -> dict[str, Any]:
    """The Things Stack v3 uplink message as a dict (``frm_payload`` may be given pre-encoded text).

    ``uplink_message.received_at`` is when the network server received the uplink (the reading's
    time); the top-level ``received_at`` is the application server's, some milliseconds later.
    """
    payload_text = frm_payload if isinstance(frm_payload, str) else b64(frm_payload)
    rx = [
        _compact(
            {
                "gateway_ids": {"gateway_id": g.gateway_id, "eui": g.eui},
                "time": iso_nano_z(received_at - timedelta(milliseconds=40)),
                "timestamp": g.timestamp,
                "rssi": g.rssi,
                "channel_rssi": g.rssi,
                "snr": g.snr,
                "location": {"latitude": g.lat, "longitude": g.lon, "source": "SOURCE_REGISTRY"},
                "received_at": iso_nano_z(received_at - timedelta(milliseconds=12)),
            }
        )
        for g in gateways
    ]
    uplink = _compact(
        {
            "session_key_id": session_key_id,
            "f_port": f_port,
            "f_cnt": f_cnt,
            "frm_payload": payload_text,
        }
    )
    if decoded_payload is not None:
        uplink["decoded_payload"] = dict(decoded_payload)
    uplink["rx_metadata"] = rx
    uplink["settings"] = {
        "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": spreading_factor, "coding_rate": "4/5"}},
        "frequency": str(frequency),
        "timestamp": int(received_at.timestamp() * 1e6) & 0xFFFFFFFF,
    }
    uplink["received_at"] = iso_nano_z(received_at)
    uplink["consumed_airtime"] = "0.185344s"
    uplink["version_ids"] = dict(version_ids)
    uplink["network_ids"] = {
        "net_id": "000013",
        "tenant_id": tenant_id,
        "cluster_id": "eu1",
        "cluster_address": "eu1.cloud.thethings.network",
    }
    return {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": application_id},
            "dev_eui": dev_eui.upper(),
            "join_eui": join_eui.upper(),
            "dev_addr": dev_addr.upper(),
        },
        "correlation_ids": list(correlation_ids),
        "received_at": iso_nano_z(received_at + timedelta(milliseconds=27)),
        "uplink_message": uplink,
    }


def tts_topic(application_id: str, device_id: str, tenant_id: str = "ttn") -> str:
    return f"v3/{application_id}@{tenant_id}/devices/{device_id}/up"


def chirpstack_uplink(
    *,
    deduplication_id: str,
    time: datetime,
    tenant_id: str,
    tenant_name: str,
    application_id: str,
    application_name: str,
    device_profile_id: str,
    device_profile_name: str,
    device_name: str,
    dev_eui: str,
    dev_addr: str,
    f_port: int,
    f_cnt: int,
    data: bytes | str,
    gateways: Sequence[GatewayRx],
    obj: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    dr: int = 3,
    frequency: int = 867_100_000,
) -> dict[str, Any]:
    """ChirpStack v4 uplink event as a dict; ``time`` is the reading's time."""
    device_info: dict[str, Any] = {
        "tenantId": tenant_id,
        "tenantName": tenant_name,
        "applicationId": application_id,
        "applicationName": application_name,
        "deviceProfileId": device_profile_id,
        "deviceProfileName": device_profile_name,
        "deviceName": device_name,
        "devEui": dev_eui.lower(),
    }
    if tags:
        device_info["tags"] = dict(tags)
    event = _compact(
        {
            "deduplicationId": deduplication_id,
            "time": iso_nano_offset(time),
            "deviceInfo": device_info,
            "devAddr": dev_addr.lower(),
            "adr": True,
            "dr": dr,
            "fCnt": f_cnt,
            "fPort": f_port,
            "data": data if isinstance(data, str) else b64(data),
        }
    )
    if obj is not None:
        event["object"] = dict(obj)
    event["rxInfo"] = [
        _compact(
            {
                "gatewayId": g.gateway_id,
                "uplinkId": g.timestamp & 0xFFFFFFFF,
                "rssi": g.rssi,
                "snr": g.snr,
                "location": {"latitude": g.lat, "longitude": g.lon},
                "context": b64(g.timestamp.to_bytes(4, "big")),
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
            }
        )
        for g in gateways
    ]
    event["txInfo"] = {
        "frequency": frequency,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 12 - dr, "codeRate": "CR_4_5"}},
    }
    return event


def chirpstack_topic(application_id: str, dev_eui: str) -> str:
    return f"application/{application_id}/device/{dev_eui.lower()}/event/up"


def dumps(obj: Any) -> bytes:
    """Compact JSON as both network servers publish it (UTF-8, insertion order)."""
    return orjson.dumps(obj)
