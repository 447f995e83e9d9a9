"""Domain ⇄ protobuf for the link's batches: the one place both sides translate them."""

from __future__ import annotations

from dataclasses import asdict, fields

from trailwarden.common.model import RecordBatch, SourceMeta
from trailwarden.common.wire import link_pb2

_SOURCE_FIELDS = tuple(f.name for f in fields(SourceMeta))


def batch_to_wire(batch: RecordBatch) -> link_pb2.EventBatch:
    return link_pb2.EventBatch(
        sequence=batch.sequence,
        source=link_pb2.SourceMeta(**asdict(batch.source)),
        records=list(batch.records),
    )


def batch_from_wire(message: link_pb2.EventBatch) -> RecordBatch:
    source = message.source
    return RecordBatch(
        sequence=message.sequence,
        source=SourceMeta(**{name: getattr(source, name) for name in _SOURCE_FIELDS}),
        records=tuple(message.records),
    )
