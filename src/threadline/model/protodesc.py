"""Protobuf message classes declared in Python, for the wire formats we speak that have no
generated classes among our dependencies (Tempo's ``tempopb``, Jaeger's ``api_v2``, Zipkin's
``proto3``, Prometheus remote write).

Messages are written as field tuples taken from the formats' public definitions, added to a
``FileDescriptorProto`` and built into classes by the protobuf library, which then does all the
encoding (binary and proto3 JSON).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
OPTIONAL, REPEATED = F.LABEL_OPTIONAL, F.LABEL_REPEATED
# (field name, number, type, label, type name for messages and enums or "")
FieldSpec = tuple[str, int, int, int, str]


def add_message(
    container: Any, name: str, fields: Iterable[FieldSpec], *, json_names: bool = False
) -> descriptor_pb2.DescriptorProto:
    """Add message ``name`` to ``container`` (a file's ``message_type`` or a ``nested_type``)."""
    msg = container.add(name=name)
    for fname, number, ftype, label, type_name in fields:
        field = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if json_names:
            field.json_name = fname
        if type_name:
            field.type_name = type_name
    return msg


def add_enum(container: Any, name: str, values: Iterable[str]) -> None:
    enum = container.add(name=name)
    for number, value in enumerate(values):
        enum.value.add(name=value, number=number)


def build(
    fdp: descriptor_pb2.FileDescriptorProto,
    names: Iterable[str],
    *,
    dependencies: Iterable[ModuleType] = (),
    private: bool = True,
) -> dict[str, Any]:
    """Message classes for ``names`` of ``fdp``.

    A private pool keeps the declared names from clashing with generated classes a client
    library may register for the same package; a file using messages of the default pool
    (OTLP's, for instance) must be built there with ``private=False``.
    """
    if private:
        pool = descriptor_pool.DescriptorPool()
        for dep in dependencies:
            pool.Add(descriptor_pb2.FileDescriptorProto.FromString(dep.DESCRIPTOR.serialized_pb))
    else:
        pool = descriptor_pool.Default()
    fdp.dependency.extend(dep.DESCRIPTOR.name for dep in dependencies)
    try:
        file_desc = pool.FindFileByName(fdp.name)  # already built (module reloaded)
    except KeyError:
        file_desc = pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(file_desc.message_types_by_name[name])
        for name in names
    }


def declare(
    file_name: str,
    package: str,
    messages: dict[str, list[FieldSpec]],
    *,
    enums: dict[str, list[str]] | None = None,
    dependencies: Iterable[ModuleType] = (),
    private: bool = True,
    json_names: bool = False,
) -> dict[str, Any]:
    """Classes for flat ``messages`` (and top-level ``enums``) of one proto3 file."""
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    for name, values in (enums or {}).items():
        add_enum(fdp.enum_type, name, values)
    for name, fields in messages.items():
        add_message(fdp.message_type, name, fields, json_names=json_names)
    return build(fdp, messages, dependencies=dependencies, private=private)
