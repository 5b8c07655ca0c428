"""bench/chatbot_shape.py: LoCoMo's question forms rewritten in the first and second person, and
conversations posted with roles and no names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.chatbot_shape import as_chatbot, rewrite_question
from bench.locomo import Conversation, Question, Turn, message_payload


@pytest.mark.parametrize(
    ("question", "rewritten"),
    [
        ("When did Caroline go to the LGBTQ support group?", "When did I go to the LGBTQ support group?"),
        ("What is Caroline's identity?", "What is my identity?"),
        ("When is Melanie planning on going camping?", "When are you planning on going camping?"),
        ("What activities does Melanie partake in?", "What activities do you partake in?"),
        ("Where has Melanie camped?", "Where have you camped?"),
        ("When did Caroline meet up with her friends?", "When did I meet up with my friends?"),
        ("Would Caroline pursue writing as a career?", "Would I pursue writing as a career?"),
        ("In what ways is Caroline participating?", "In what ways am I participating?"),
        ("What did Melanie give Caroline?", "What did you give me?"),
        ("What do Caroline and Melanie both like?", "What do we both like?"),
        ("Is Caroline happy?", "Am I happy?"),
        ("Where did the sisters meet?", "Where did the sisters meet?"),  # names nobody: unchanged
    ],
)
def test_questions_are_asked_by_the_user_of_the_assistant(question: str, rewritten: str) -> None:
    assert rewrite_question(question, "Caroline", "Melanie") == rewritten


def test_a_chatbot_conversation_posts_roles_without_names() -> None:
    when = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    turns = tuple(
        Turn(f"D1:{i}", 1, i, speaker, text, None, "1:56 pm on 8 May, 2023", when)
        for i, (speaker, text) in enumerate((("Caroline", "I went to a group."), ("Melanie", "How was it?")))
    )
    conversation = Conversation(
        "conv-x", "Caroline", "Melanie", turns, (Question("conv-x", "What did Caroline do?", ("D1:0",), 1),)
    )
    shaped = as_chatbot(conversation)
    payloads = [message_payload(t, shaped) for t in shaped.turns]
    assert [p["role"] for p in payloads] == ["user", "assistant"] and all("name" not in p for p in payloads)
    assert [p["content"] for p in payloads] == ["I went to a group.", "How was it?"]
    assert shaped.questions[0].question == "What did I do?" and shaped.questions[0].evidence == ("D1:0",)
    assert "name" in message_payload(turns[0], conversation)  # the LoCoMo shape keeps the names
