"""TLS for the listeners, from ``server.tls``: an ``ssl`` context for the HTTP servers and gRPC
server credentials, both made from the same PEM files (read once, at start, so that a missing
or unreadable file fails the start with the config key that names it)."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from threadline.config import ConfigError, TLSConfig
from threadline.shared_port import ALPN


def _read(path: Path, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"config key 'server.tls.{key}': cannot read {path}: {e.strerror}") from e


class ServerTLS:
    """The certificate, key and client CAs of ``server.tls`` (``None`` members when off)."""

    def __init__(self, cfg: TLSConfig) -> None:
        self.cfg = cfg
        self.cert = _read(cfg.cert_file, "cert_file") if cfg.cert_file else None
        self.key = _read(cfg.key_file, "key_file") if cfg.key_file else None
        self.client_ca = _read(cfg.client_ca_file, "client_ca_file") if cfg.client_ca_file else None
        # for HTTP listeners; None without TLS
        self.ssl_context = self._ssl_context() if self.enabled else None
        # for the HTTP API port, which carries gRPC too: h2 offered by ALPN after HTTP/1.1
        self.shared_port_context = self._ssl_context() if self.enabled else None
        if self.shared_port_context is not None:
            self.shared_port_context.set_alpn_protocols(ALPN)

    @property
    def enabled(self) -> bool:
        return self.cert is not None

    def _ssl_context(self) -> ssl.SSLContext:
        """TLS 1.2 and newer, client certificates required when ``client_ca_file`` is set."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        assert self.cfg.cert_file is not None and self.cfg.key_file is not None
        try:
            context.load_cert_chain(self.cfg.cert_file, self.cfg.key_file)
            if self.client_ca is not None:
                context.load_verify_locations(cadata=self.client_ca.decode())
                context.verify_mode = ssl.CERT_REQUIRED
        except (ssl.SSLError, ValueError) as e:
            raise ConfigError(
                f"config key 'server.tls': the certificate or key is unusable: {e}"
            ) from None
        return context

    def grpc_credentials(self) -> grpc.ServerCredentials | None:
        """For gRPC listeners; ``None`` without TLS."""
        if not self.enabled:
            return None
        assert self.key is not None and self.cert is not None
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )
