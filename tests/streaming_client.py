"""A gRPC client of Tempo's ``tempopb.StreamingQuerier`` (what Grafana's streaming search
calls), built from ``tests/protos`` with grpcio-tools' protoc into a private descriptor pool:
it shares nothing with the server's own message declarations."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_tools import protoc

PROTOS = Path(__file__).parent / "protos"
SERVICE = "tempopb.StreamingQuerier"
# method -> (request message, reply message)
METHODS = {
    "Search": ("SearchRequest", "SearchResponse"),
    "SearchTags": ("SearchTagsRequest", "SearchTagsResponse"),
    "SearchTagsV2": ("SearchTagsRequest", "SearchTagsV2Response"),
    "SearchTagValues": ("SearchTagValuesRequest", "SearchTagValuesResponse"),
    "SearchTagValuesV2": ("SearchTagValuesRequest", "SearchTagValuesV2Response"),
    "MetricsQueryRange": ("QueryRangeRequest", "QueryRangeResponse"),
    "MetricsQueryInstant": ("QueryInstantRequest", "QueryInstantResponse"),
}


@functools.cache
def messages() -> dict[str, Any]:
    """The message classes of ``streaming_querier.proto``, by name."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        rc = protoc.main(
            [
                "protoc",
                f"-I{PROTOS}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                str(PROTOS / "streaming_querier.proto"),
            ]
        )
        assert rc == 0, "protoc failed on tests/protos"
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    main = pool.FindFileByName("streaming_querier.proto")
    return {
        name: message_factory.GetMessageClass(desc)
        for name, desc in main.message_types_by_name.items()
    }


class StreamingClient:
    """Calls on ``target`` (``host:port``), plaintext or with ``credentials``."""

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=list(options))
        else:
            self.channel = grpc.secure_channel(target, credentials, options=list(options))
        self.metadata = tuple(metadata)

    def call(self, method: str, timeout: float = 30.0, **fields: Any) -> list[Any]:
        """Every message ``method`` streams back for a request with ``fields``."""
        request, reply = METHODS[method]
        classes = messages()
        stub = self.channel.unary_stream(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=classes[reply].FromString,
        )
        return list(stub(classes[request](**fields), timeout=timeout, metadata=self.metadata))

    def call_json(self, method: str, **fields: Any) -> list[dict[str, Any]]:
        """As ``call``, each message as proto3 JSON (what Tempo's HTTP API answers)."""
        return [json_format.MessageToDict(m) for m in self.call(method, **fields)]

    def close(self) -> None:
        self.channel.close()
