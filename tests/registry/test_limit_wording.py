"""A limit change names the rule as the schema spells it (`int32.gte`, not the folded bound)."""

from __future__ import annotations

from registry.diff.limits import Bound, _values


def test_an_added_lower_bound_is_named_gte_with_its_value() -> None:
    assert _values("int32.>", None, Bound(0, inclusive=True)) == "`int32.gte` = 0 added"


def test_a_removed_upper_bound_is_named_lt() -> None:
    assert _values("double.<", Bound(1.5, inclusive=False), None) == "`double.lt` (was 1.5) removed"


def test_a_bound_that_changes_kind_says_both_rules() -> None:
    assert _values("int64.>", Bound(0, inclusive=True), Bound(0, inclusive=False)) == (
        "`int64.gte` = 0 became `int64.gt` = 0"
    )


def test_other_rules_keep_their_path() -> None:
    assert _values("string.max_len", 4096, 1024) == "`string.max_len` from 4096 to 1024"
