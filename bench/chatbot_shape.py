"""LoCoMo in the shape most chatbots post their data: roles without speaker names, and questions
in the first and second person.

LoCoMo is a conversation between two named people, and its questions name them ("When did
Caroline go to the support group?"). A chatbot posts ``{"role": "user"}`` and
``{"role": "assistant"}`` messages without names, and its user asks "When did I go to the
support group?". :func:`as_chatbot` turns a conversation into that shape: speaker A becomes the
user, speaker B the assistant, every turn loses its name, and each question is rewritten by
:func:`rewrite_question` with A as "I" and B as "you". The evidence is unchanged, so recall is
measured the same way on a differently shaped copy of the same data.

The rewrite is rule-based and approximate (English pronouns have cases the rules only guess:
"her" before a noun is taken as possessive); ``tests/unit/test_chatbot_shape.py`` shows what
it does with LoCoMo's question forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bench.locomo import Conversation

USER, ASSISTANT = "user", "assistant"


@dataclass(frozen=True, slots=True)
class Person:
    """The words that stand for one speaker in the rewritten question."""

    subject: str  # I / you
    object: str  # me / you
    possessive: str  # my / your
    be: dict[str, str]  # is -> am / are, ...


FIRST = Person("I", "me", "my", {"is": "am", "was": "was", "has": "have", "does": "do"})
SECOND = Person("you", "you", "your", {"is": "are", "was": "were", "has": "have", "does": "do"})
_AUX = r"(?P<aux>(?i:is|was|has|does|did|do|have|had|will|would|can|could|should|might|may|must))"
#: Words after "her" that show it is an object ("gave her a ..."), not a possessive.
_AFTER_OBJECT_HER = {"a", "an", "the", "to", "for", "with", "about", "and", "or", "on", "in", "at", "that", "this"}


def _name(name: str) -> str:
    return rf"\b{re.escape(name)}\b"


def _swap(question: str, name: str, who: Person) -> str:
    text = re.sub(_name(name) + r"['\u2019]s\b", who.possessive, question)
    text = re.sub(
        rf"\b{_AUX}\s+{_name(name)}",
        lambda m: f"{who.be.get(m['aux'].lower(), m['aux'])} {who.subject}" if m["aux"][0].islower()
        else f"{who.be.get(m['aux'].lower(), m['aux'].lower()).capitalize()} {who.subject}",
        text,
    )
    text = re.sub(
        rf"{_name(name)}\s+(?P<verb>is|was|has|does)\b", lambda m: f"{who.subject} {who.be[m['verb']]}", text
    )
    text = re.sub(rf"^{_name(name)}", who.subject.capitalize() if who is FIRST else "You", text)
    text = re.sub(rf"(?<=[,;] ){_name(name)}(?=\s+\w+(?:s|ed)\b)", who.subject, text)
    return re.sub(_name(name), who.object, text)


def _pronouns(question: str, who: Person) -> str:
    """Third-person pronouns of the one person the question names, as that person's words."""
    def her(match: re.Match[str]) -> str:
        following = match["next"].lower()
        return f"{who.object}{match['space']}{match['next']}" if following in _AFTER_OBJECT_HER else (
            f"{who.possessive}{match['space']}{match['next']}"
        )

    text = re.sub(r"\bher(?P<space>\s+)(?P<next>\w+)", her, question)
    text = re.sub(r"\bher\b", who.object, text)
    text = re.sub(r"\b(?:his|hers)\b", who.possessive, text)
    text = re.sub(r"\b(?:she|he)\b", who.subject, text)
    return re.sub(r"\bhim\b", who.object, text)


def rewrite_question(question: str, speaker_a: str, speaker_b: str) -> str:
    """``question`` as the user (speaker A) would ask the assistant (speaker B)."""
    text = re.sub(rf"{_name(speaker_a)}\s+and\s+{_name(speaker_b)}|{_name(speaker_b)}\s+and\s+{_name(speaker_a)}", "we", question)
    named = [(n, p) for n, p in ((speaker_a, FIRST), (speaker_b, SECOND)) if re.search(_name(n), text)]
    for name, who in named:
        text = _swap(text, name, who)
    if len(named) == 1:
        text = _pronouns(text, named[0][1])
    return text


def as_chatbot(conversation: Conversation) -> Conversation:
    """The conversation with roles for speakers (A: user, B: assistant), no names posted, and its
    questions in the first and second person."""
    role = {conversation.speaker_a: USER, conversation.speaker_b: ASSISTANT}
    return replace(
        conversation,
        speaker_a=USER,
        speaker_b=ASSISTANT,
        named=False,
        turns=tuple(replace(t, speaker=role.get(t.speaker, ASSISTANT)) for t in conversation.turns),
        questions=tuple(
            replace(q, question=rewrite_question(q.question, conversation.speaker_a, conversation.speaker_b))
            for q in conversation.questions
        ),
    )
