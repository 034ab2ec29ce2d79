"""chat_bench.compression_costs measures every encoding through the calls' own functions."""

from __future__ import annotations

from chat_bench.compression_costs import Cost, measure, table

from chat_sdk.compression import ENCODINGS


def test_every_encoding_is_measured_on_every_size_and_shrinks_chat_text() -> None:
    costs = measure(sizes=(512, 4096), rounds=1, bytes_per_batch=20_000)
    assert [(cost.size, cost.encoding) for cost in costs] == [
        (size, encoding) for size in (512, 4096) for encoding in ENCODINGS
    ]
    for cost in costs:
        assert 0.3 < cost.ratio < 0.8, cost  # chat prose: about half its size at 4 kB, less at 512 B
        assert cost.compress_us >= 0 and cost.inflate_us >= 0
    for encoding in ENCODINGS:  # a longer message of text compresses better
        small, large = (cost.ratio for cost in costs if cost.encoding == encoding)
        assert large < small


def test_the_table_has_a_row_per_size_and_two_cells_per_encoding() -> None:
    costs = [
        Cost("zstd", 512, 0.655, 3.46, 2.04),
        Cost("gzip", 512, 0.63, 6.4, 2.8),
        Cost("zstd", 4096, 0.48, 10.5, 4.75),
        Cost("gzip", 4096, 0.49, 19.5, 7.9),
    ]
    assert table(costs).splitlines() == [
        "| message | zstd size | zstd µs (compress / inflate) | gzip size | gzip µs (compress / inflate) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        "| 512 B | 0.66 | 3.5 / 2.0 | 0.63 | 6.4 / 2.8 |",
        "| 4 kB | 0.48 | 10.5 / 4.8 | 0.49 | 19.5 / 7.9 |",
    ]
