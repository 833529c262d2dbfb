"""socker: run allow-listed Docker images as the calling user, inside the caller's job."""

__version__ = "0.1.0"
