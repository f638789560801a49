"""Client-side credentials for the gRPC API: what ``cluster.connect`` attaches to each call.

A gRPC call credential (``grpc.metadata_call_credentials``) composed with the channel's TLS
credentials, so every channel a client opens — and any stub on it — carries the user's
``authorization: Basic ...`` (and a session token when one is set). The server remembers a
verified login, so the password is hashed once per node, not per request. By default the
user and password come from the cluster directory's credentials file (``quiver init``'s
initial admin).

Must never: send credentials over a channel without TLS (gRPC refuses call credentials on an
insecure channel), or write a password anywhere.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import grpc

SESSION_METADATA = "quiver-session"
AUTHORIZATION_METADATA = "authorization"


class BasicAuth(grpc.AuthMetadataPlugin):
    """``authorization: Basic <user:password>``, plus ``quiver-session`` once ``token`` is
    set (the server prefers a good token and falls back to the password)."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._value = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.token = ""

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        metadata: list[tuple[str, str]] = [(AUTHORIZATION_METADATA, self._value)]
        if self.token:
            metadata.append((SESSION_METADATA, self.token))
        callback(tuple(metadata), None)


def credentials_file(path: Path) -> tuple[str, str] | None:
    """(user, password) from a ``{"user", "password"}`` file, or None when there is none or
    it cannot be read (a client without the admin's file logs in as someone else)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or "user" not in doc or "password" not in doc:
        return None
    return str(doc["user"]), str(doc["password"])


def with_auth(
    channel_credentials: grpc.ChannelCredentials, auth: tuple[str, str] | None
) -> grpc.ChannelCredentials:
    """TLS credentials that also authenticate every call as ``auth`` (unchanged if None)."""
    if auth is None:
        return channel_credentials
    plugin = BasicAuth(*auth)
    return grpc.composite_channel_credentials(
        channel_credentials, grpc.metadata_call_credentials(plugin, name="quiver-basic")
    )
