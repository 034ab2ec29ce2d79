"""The codec microbenchmark measures what it names: every codec, on the same message, in a short run."""

from __future__ import annotations

import datetime

from chat_bench import codec_bench

from chat.v1 import common_pb2
from chat.v1 import message_service_pb2 as pb
from chat_sdk import v1


def _sample() -> bytes:
    message = pb.Message(id="m-1", conversation_id="c-1", content="chat message text " * 7, sequence=3)
    message.author.CopyFrom(common_pb2.User(user_id="u-1", display_name="Ada"))
    message.files.add(file_id="f-1", name="report.pdf", size_bytes=48213)
    message.created_at.FromDatetime(datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC))
    return message.SerializeToString()


def test_every_operation_works_on_the_same_message() -> None:
    data = _sample()
    operations = codec_bench.operations(data)
    assert set(operations) == {
        ("upb", "parse"),
        ("upb", "encode"),
        ("dataclass", "parse"),
        ("dataclass", "encode"),
        ("python-path", "parse"),
        ("python-path", "encode"),
    }
    assert operations[("upb", "encode")]() == data
    assert operations[("dataclass", "encode")]() == data
    assert operations[("python-path", "encode")]() == data
    assert operations[("dataclass", "parse")]() == v1.Message.parse(data)
    assert operations[("python-path", "parse")]() == v1.Message.parse(data)


def test_a_short_run_reports_every_codec_with_betterproto2_measured_apart() -> None:
    results = codec_bench.measure(_sample(), rounds=1, seconds_per_figure=0.002)
    assert results.message_bytes == len(_sample())
    for codec in codec_bench.CODECS:
        for operation in ("parse", "encode"):
            assert len(results.rounds[(codec, operation)]) == 1
            assert results.micros(codec, operation) > 0
    assert results.ratio("upb", "parse") == 1.0
    table = codec_bench.table(results)
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == [f"| {c}" for c in codec_bench.CODECS]
