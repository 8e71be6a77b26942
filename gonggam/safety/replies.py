"""The layer's verdict type and its fixed texts: the crisis reply and the concern footer (109 / 마들랜 / 119 / 112)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["crisis", "concern", "none"]

CRISIS_REPLY = (
    "지금 정말 많이 힘드신 것 같아요. 이렇게 마음을 털어놓아 주셔서 고맙습니다. "
    "이 무게를 혼자서 견디지 않으셨으면 해요.\n"
    "지금 바로 자살예방상담전화 109에 전화해 주세요. 24시간 언제든 상담사가 이야기를 들어 드려요. "
    "전화가 어려우시면 109로 문자를 보내 문자 상담 '마들랜'을 이용하실 수 있어요.\n"
    "위험한 상황이거나 이미 몸을 다치셨다면 망설이지 말고 119나 112에 바로 연락해 주세요.\n"
    "가까운 사람에게 지금 곁에 있어 달라고 부탁하는 것도 큰 도움이 돼요. 당신은 소중한 사람이에요."
)

CONCERN_FOOTER = (
    "마음이 많이 힘드실 때는 혼자 견디지 마시고, 24시간 자살예방상담전화 109(문자 상담 가능)에 언제든 연락해 주세요."
)

RANK: dict[str, int] = {"none": 0, "concern": 1, "crisis": 2}


@dataclass(frozen=True)
class Assessment:
    level: Level
    reasons: tuple[str, ...]  # stages, rules and scores that decided, for logs / --json output; never the user text
    # How sure the message stages are (the conversation context reads them): the classifier's crisis probability,
    # and whether a precise rule (not the classifier alone) found the crisis.
    crisis_score: float = field(default=0.0, compare=False)
    by_rule: bool = field(default=False, compare=False)


def worst(*levels: Level) -> Level:
    """The most severe of the levels."""
    return max(levels, key=RANK.__getitem__, default="none")


LABELS_ORDER: tuple[Level, ...] = ("crisis", "concern", "none")
