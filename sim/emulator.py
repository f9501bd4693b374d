"""The link emulator moved to ``edgesplit.device.link_emulator`` (the device side runs it too);
this name stays for existing imports."""

from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator, LinkStats

__all__ = ["LinkEmulator", "LinkProfile", "LinkStats"]
