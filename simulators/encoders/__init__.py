"""Wire-format encoders: pure functions from vendor field values to the bytes a device,
network server or gateway publishes. Field names are those of the vendors' published codecs
(the names the device models in ``schemas/devices`` map)."""
