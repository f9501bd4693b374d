"""edgesplit: decide, run and measure what an AI wearable does on the device and in the cloud."""

__version__ = "0.1.0"
