"""Sensor.Community (airrohr firmware) "custom API" body, as the firmware builds it.

The firmware concatenates strings (``airrohr-firmware.ino``: ``data_first_part``,
``add_Value2Json``, the custom-API prefix in ``sendDataToOptionalApis``), so the spacing is
its own: ``{"esp8266id": "…", "software_version": "…", "sensordatavalues":[{…},{…}]}``.
Values are strings (Arduino ``String(float)``: two decimals); there is no timestamp.
"""

from __future__ import annotations

from collections.abc import Sequence


def value_text(value: float) -> str:
    """Arduino ``String(float)``: two decimals."""
    return f"{value:.2f}"


def body(esp8266id: str, software_version: str, values: Sequence[tuple[str, str]]) -> bytes:
    """The custom-API body; ``values`` are (value_type, value text) in the firmware's order."""
    items = "".join(f'{{"value_type":"{name}","value":"{text}"}},' for name, text in values)
    data = f'{{"software_version": "{software_version}", "sensordatavalues":[{items}'
    if data.endswith(","):
        data = data[:-1]
    data += "]}"
    return (f'{{"esp8266id": "{esp8266id}", ' + data[1:]).encode("utf-8")


def sds_bme280_values(
    pm10: float,
    pm2_5: float,
    temperature: float,
    pressure_pa: float,
    humidity: float,
    *,
    samples: int,
    min_micro: int,
    max_micro: int,
    signal: int,
    interval_ms: int | None = 145000,
) -> list[tuple[str, str]]:
    """The firmware's order: SDS011 first, BME280 temperature, pressure, humidity, then the extras."""
    values = [
        ("SDS_P1", value_text(pm10)),
        ("SDS_P2", value_text(pm2_5)),
        ("BME280_temperature", value_text(temperature)),
        ("BME280_pressure", value_text(pressure_pa)),
        ("BME280_humidity", value_text(humidity)),
        ("samples", str(samples)),
        ("min_micro", str(min_micro)),
        ("max_micro", str(max_micro)),
    ]
    if interval_ms is not None:  # newer firmware (NRZ-2020-130 on) sends the interval too
        values.append(("interval", str(interval_ms)))
    values.append(("signal", str(signal)))
    return values
