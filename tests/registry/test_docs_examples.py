"""The reference's examples use the names each generator writes."""

from __future__ import annotations

import pytest

import chat_sdk.v1
from registry.docs_examples import lower_camel, python_class, snake_case
from registry.docs_model import behaviour_label


@pytest.mark.parametrize(
    ("proto", "python"),
    [("AIService", "AiService"), ("RAGService", "RagService"), ("MessageService", "MessageService")],
)
def test_python_class_names_follow_betterproto2(proto: str, python: str) -> None:
    assert python_class(proto) == python
    assert hasattr(chat_sdk.v1, f"{python}Stub"), "the installed SDK has the class the example names"


@pytest.mark.parametrize(
    ("method", "python", "typescript"),
    [
        ("GetMessage", "get_message", "getMessage"),
        ("StreamCompletion", "stream_completion", "streamCompletion"),
        ("ChatStream", "chat_stream", "chatStream"),
    ],
)
def test_method_names_follow_each_generator(method: str, python: str, typescript: str) -> None:
    assert snake_case(method) == python
    assert lower_camel(method) == typescript


@pytest.mark.parametrize(
    ("comment", "label"),
    [
        ("message_id is the ID. Required.\nFormat: opaque.", "Required."),
        ("include_user fills author. Optional.", "Optional."),
        ("sequence is the position. Output only.", "Output only."),
        ("content is the text.", ""),
        ("NotRequired.ly written", ""),
    ],
)
def test_behaviour_label_is_read_from_the_comment(comment: str, label: str) -> None:
    assert behaviour_label(comment) == label
