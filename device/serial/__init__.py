"""Host side of the sensor microcontroller link (spec: firmware_stubs/protocol/PROTOCOL.md)."""
