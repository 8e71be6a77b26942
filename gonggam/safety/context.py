"""Stage 5: conversation context. The latest user message is read with what came before it.

Each user turn of the last few is graded in its own context, oldest first, so that a later turn sees what the
earlier ones were in context (a yes to a screening question is a crisis the next turn can follow). Seven heads of
the context classifier (models/context.safetensors, trained on data/safety/context/ and the labelled conversations)
read the turns whose meaning depends on what came before; regular expressions over yes, no and 농담 kept failing on
answers written in other words (a double negative is a yes; 칼은 치웠어 after a crisis is calm):

- ``screening`` reads the assistant's turn right before the user's, when it is a question: does it ask about
  suicide or self-harm? (109에 전화해 보시면 어떨까요? does not.)
- ``affirmed`` reads the answer to such a question, whole (not by sentence windows): anything but a clear no
  (응, 가끔요, 아니라고는 못 하겠어) is
  `crisis`, as a clinician would take it; a clear no is `concern`.
- ``continues`` reads the turn after a crisis: a method, place or amount question, a light retraction (농담이야)
  or an insistence keeps it `crisis`; calm, thanks or a step toward help is `concern`, so that "고마워" is answered
  by the model with the 109 footer instead of the fixed crisis reply again.
- ``followup`` reads the turn after one about someone else at risk, the past or a loss: the user turning to their
  own risk (사실 나도 그래) is `crisis`; a follow-up about the other person (매일 전화드리는데 충분할까요?, whose
  words alone can score as a crisis) is `concern`.
- ``recalls`` reads the assistant's turns: does one speak of suicide, self-harm or a crisis (recalling the user's
  words, 109)? Then the conversation stays at least `concern`, and no topic explains a crisis away after it.
- ``others`` reads the assistant's answer to a user turn: does it take the risk as someone else's (아드님, 친구분,
  어머님)? The message alone often cannot tell (우리 영감이 요새 자꾸 죽고 싶다 카네, 딸 손목에 긁은 자국); a crisis
  turn so answered counts as `concern` about someone else, and the ``followup`` head reads what comes next.
- ``topic`` reads the earlier user turns when the latest is a crisis of everyday-sense words: does what was said
  give those words their everyday sense (논문 마감, 엘든링 보스, 옥상 텃밭) or not (despair, no topic at all)?

An earlier crisis counts when it is sure: a rule found it, the classifier scored it at least
``CONFIRM_AFTER_CRISIS``, or the context made it (a yes to a screening question). One that was a crisis only by a
borderline score carries nothing forward: a false alarm on 외로워요 must not put the rest of an ordinary
conversation under the 109 footer. Otherwise:

- Right after a sure crisis, the ``continues`` head decides unless a rule or a classifier at least ``SURE_AGAIN``
  finds a crisis in the turn itself (the words of a calm turn, 밴드 붙였어, can score high alone). After a
  borderline crisis it decides only over a crisis the classifier alone found, and its calm side is `concern`.
- The last few user turns read together: a crisis that only exists across turns (distress, then "그래서 오늘 밤에
  하려고"; a phrase split over two messages) is `crisis`; not when one of those turns was a crisis by itself, which
  the join would only find again.
- The turn before, when a rule or a cue made it `concern` (a friend at risk), keeps a follow-up `concern` unless
  the ``followup`` head reads the user turning to their own risk, or a rule or a classifier at least
  ``SURE_AFTER_CONCERN`` finds a crisis in the turn itself.
- The topic for ambiguous words (scope decision, docs/safety.md): when the latest message is a crisis made only of
  words with an everyday sense (끝내다, 번개탄, 몇 알: ``AMBIGUOUS_RULES`` or the classifier alone), every earlier
  user turn is `none` and they name a benign topic (캠핑, 프로젝트, 카페, 약국 … or the ``topic`` head), the
  conversation is `none`
  (캠핑 가는데 … 번개탄 몇 개 사야 돼?; a project, then 오늘 다 끝내버리고 싶다).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gonggam.safety import morph, rules
from gonggam.safety.classifier import LinearModel
from gonggam.safety.replies import CRISIS_REPLY, Assessment

WINDOW = 3  # user turns read together with the latest one, and how far back an earlier crisis is followed
HISTORY = 6  # user turns graded in context; older ones are graded as plain messages
# After an earlier crisis the conversation is at least `concern` (109 stays in view); repeating the fixed crisis
# reply then needs a rule, a classifier this sure, or the ``continues`` head, not a borderline score on "고마워".
CONFIRM_AFTER_CRISIS = 0.6
# Right after a crisis the `continues` head reads the next turn; only a rule or a classifier this sure overrules it
# (밴드 붙였어 깊진 않아, 이제 좀 괜찮아졌어 scores 0.6 on its words alone).
SURE_AGAIN = 0.9
# After a turn about someone else at risk the `followup` head reads the next one; a classifier this sure overrules it.
SURE_AFTER_CONCERN = 0.97

# A classifier this sure of a crisis is not explained away by an earlier topic (0.9 kept 논문 마감 from explaining
# 오늘 밤에 다 끝내버리고 싶어요; at 1.01 dev escalations were lost: chosen on dev conversations). 0.99 keeps
# 이번 주 안에 다 끝내버리고 싶다 after a thesis or a project (the classifier scores it 0.995); on h8 to h11
# (dev) 0.999 won benign contexts, but it let 친구랑 싸워서 마음이 복잡해 explain 오늘 밤에 모아둔 수면제를 전부
# 삼킬 거야 (0.9989) away: a weak topic reading must never lower a crisis that sure, so it stays 0.99.
TOPIC_CANNOT_EXPLAIN = 0.99
# The `topic` head's probability that the earlier turns give no everyday sense, below which they do (dev: 0.3).
TOPIC_EXPLAINS = 0.3
# When a regular expression names a benign topic (회사, 프로젝트, 캠핑), the `topic` head must not read despair in the
# same turns: 회사 단톡방에서 저격당했어요 names the workplace and is no everyday sense for 회사 옥상 가서 끝낼 거예요.
TOPIC_CUE_EXPLAINS = 0.5
# Rules whose words have an everyday sense (끝내다, 번개탄, 몇 알): an earlier benign topic can explain them.
AMBIGUOUS_RULES = frozenset(
    {"rule:ending_it", "rule:charcoal_or_gas", "rule:pills_or_poison", "rule:method_seeking", "rule:self_deletion"}
)


def _confirmed(assessment: Assessment) -> bool:
    """A crisis found by a rule that decides, a classifier this sure or the context, not by a borderline score."""
    by_context = any(r.startswith("context:") for r in assessment.reasons)
    return assessment.level == "crisis" and (
        assessment.by_rule or by_context or assessment.crisis_score >= CONFIRM_AFTER_CRISIS
    )


def _precise(assessment: Assessment) -> bool:
    """Whether a rule, a scope exception or a lemma cue took part (not the classifier's risk score alone)."""
    return any(r.startswith(("rule:", "scope:", "cue:")) for r in assessment.reasons)


def _about_someone_else(text: str) -> bool:
    return "third_party" in rules.scope_cues(morph.sentences(text))


def _explained_by_topic(
    previous: list[str], assessed: list[Assessment], latest: Assessment, model: LinearModel
) -> bool:
    """A crisis made only of everyday-sense words, after user turns that are all `none` and name a benign topic
    (a regex cue for the common ones, the `topic` head for the rest: 논문 마감, 엘든링 보스, 이 관계)."""
    if not previous or any(a.level != "none" for a in assessed) or (latest.by_rule and not _only_ambiguous(latest)):
        return False
    if latest.crisis_score >= TOPIC_CANNOT_EXPLAIN:
        return False
    said = " ".join(previous)
    no_everyday_sense = model.score(said)["topic"]
    if "topic" in rules.scope_cues(morph.sentences(said)):
        return no_everyday_sense < TOPIC_CUE_EXPLAINS
    return no_everyday_sense < TOPIC_EXPLAINS


def _only_ambiguous(assessment: Assessment) -> bool:
    return {r for r in assessment.reasons if r.startswith("rule:")} <= AMBIGUOUS_RULES


# How sure the `others` head must be of an assistant turn for it to keep a conversation at `concern` (it reflected a
# report the message stage graded `none`: 후임이 자기 없어지면 다 편할 거라고 함). At 0.5 it fired on ordinary turns
# about a child (대화가 줄어드니 서운하시겠어요); dev (h8-h10): 0.5 → 0.956, 0.7 → 0.957, 0.95 → 0.955.
SPEAKS_OF_SOMEONE_ELSE = 0.7

# The reason given to an earlier crisis turn that the assistant's answer took as someone else's risk (it is `concern`).
SOMEONE_ELSE = "context:someone_elses_risk"

# A screening question asks: the head reads what a turn is about, this says that it is a question at all
# (주인공이 죽고 싶다고 했죠. is about the topic and asks nothing).
_QUESTION = re.compile(r"[?？]|(?:나요|까요|세요|신가요|는지|니|냐|어요|있어|있니|해요|했어|봤어|든|드나요)[.!~…\s]*$")


def _asks_about_risk(turn: dict | None, model: LinearModel) -> bool:
    if turn is None or turn["role"] != "assistant" or not _QUESTION.search(turn["content"].strip()):
        return False
    return _fires(model, "screening", turn["content"])


def _assistant_speaks_of_crisis(
    turns: list[dict], users: list[int], assess_message: Callable[[str], Assessment], model: LinearModel
) -> bool:
    """Whether an assistant turn since the user turns of the window speaks of suicide, self-harm or a crisis.

    The scope exceptions hold for the assistant's words too: 주인공이 죽고 싶다고 했죠 is about a film."""
    return any(
        _fires(model, "recalls", text) and not any(r.startswith("scope:") for r in assess_message(text).reasons)
        for text in _assistant_turns_in_window(turns, users)
    )


# Heads that read a turn whole: the yes or no of an answer is in its first clause, and a later sentence window alone
# (아니요, 그런 생각은 안 해요. 애들 보면 힘나요 → "애들 보면 힘나요") is no clear no (dev: screening_no 0.96 → 0.99).
WHOLE_TURN_HEADS = frozenset({"affirmed"})


def _assistant_turns_in_window(turns: list[dict], users: list[int]) -> list[str]:
    """The assistant's turns since the first user turn of the window, before the latest user turn."""
    start = users[-WINDOW - 1] if len(users) > WINDOW else 0
    return [t["content"] for t in turns[start : users[-1]] if t["role"] == "assistant"]


def _speaks_of_someone_else(turns: list[dict], users: list[int], model: LinearModel) -> bool:
    """Whether an assistant turn since the user turns of the window speaks of someone else's risk (아드님, 친구분)."""
    return any(
        not _layers_own(text) and model.score(text)["others"] >= SPEAKS_OF_SOMEONE_ELSE
        for text in _assistant_turns_in_window(turns, users)
    )


def _fires(model: LinearModel, head: str, text: str) -> bool:
    return model.fires(model.score(text, windows=head not in WHOLE_TURN_HEADS), head)


def _in_context(
    turns: list[dict],
    users: list[int],
    graded: list[Assessment],
    assess_message: Callable[[str], Assessment],
    model: LinearModel,
) -> Assessment:
    """The level of the user turn at ``turns[users[-1]]``, given the in-context levels of the user turns before it."""
    texts = [turns[i]["content"] for i in users]
    latest = assess_message(texts[-1])
    reasons = list(latest.reasons)
    before = turns[users[-1] - 1] if users[-1] > 0 else None
    asked = _asks_about_risk(before, model)
    sure_crises = [i for i, a in enumerate(graded) if _confirmed(a)]
    if sure_crises and len(graded) - sure_crises[-1] <= WINDOW:
        # Right after a crisis the `continues` head reads the turn first, even when it answers a screening question:
        # a denial (그냥 써본 거예요) is a retraction there, not a clear no.
        if latest.level == "crisis" and (latest.by_rule or latest.crisis_score >= SURE_AGAIN):
            return latest
        if _fires(model, "continues", texts[-1]):
            return Assessment("crisis", (*reasons, "context:crisis_continues"), latest.crisis_score)
        # A yes to a screening question asked after the crisis is one too (ㅇㅇ 참기 힘듦), whatever `continues` reads.
        if asked and _fires(model, "affirmed", texts[-1]):
            return Assessment("crisis", (*reasons, "context:screening_affirmed"), latest.crisis_score)
        return Assessment("concern", (*reasons, "context:earlier_crisis"), latest.crisis_score)
    if asked:
        if latest.level == "crisis" and latest.by_rule:
            return latest
        if _fires(model, "affirmed", texts[-1]):
            return Assessment("crisis", (*reasons, "context:screening_affirmed"), latest.crisis_score)
        return Assessment("concern", (*reasons, "context:screening_denied"), latest.crisis_score)
    # The assistant's own turns say what the conversation is about: one that recalls the user's wish to die or
    # reflects a friend's risk keeps the 109 footer in view (지금은 좀 어떠세요? 아까보단 괜찮아요), and an earlier
    # topic cannot explain a crisis away after it.
    recalls_crisis = _assistant_speaks_of_crisis(turns, users, assess_message, model)
    about_others = _speaks_of_someone_else(turns, users, model)
    recalled = recalls_crisis or about_others
    # After a crisis that was only borderline, a crisis of the classifier alone is read by the `continues` head too:
    # the words of a calm turn (언니가 와줬어 지금 옆에 있어) score high alone. Its calm side is `concern`, not `none`.
    crisis_in_window = any(a.level == "crisis" for a in graded[-WINDOW:])
    if crisis_in_window and latest.level == "crisis" and not latest.by_rule and latest.crisis_score < SURE_AGAIN:
        if _fires(model, "continues", texts[-1]):
            return Assessment("crisis", (*reasons, "context:crisis_continues"), latest.crisis_score)
        return Assessment("concern", (*reasons, "context:earlier_crisis"), latest.crisis_score)
    if sure_crises:  # further back than the window: the 109 footer stays
        if _confirmed(latest):
            return latest
        return Assessment("concern", (*reasons, "context:earlier_crisis"), latest.crisis_score)
    if (
        graded
        and graded[-1].level == "concern"
        and (_precise(graded[-1]) or SOMEONE_ELSE in graded[-1].reasons or _about_someone_else(texts[-2]))
    ):
        # After a turn about someone else, the past or a loss, the `followup` head reads whether the user now
        # speaks of their own risk (사실 나도 그래) or stays with the topic (매일 전화드리는데 충분할까요?).
        if latest.level == "crisis" and (latest.by_rule or latest.crisis_score >= SURE_AFTER_CONCERN):
            return latest
        if _fires(model, "followup", texts[-1]):
            return Assessment("crisis", (*reasons, "context:turns_to_self"), latest.crisis_score)
        return Assessment("concern", (*reasons, "context:earlier_concern"), latest.crisis_score)
    # After the `followup` head, which reads a turn to one's own risk that the message alone misses (사실 저도 요즘
    # 그냥 사라지고 싶어요, after a report about a brother the assistant answered).
    # An assistant turn that recalls the user's own crisis (not someone else's) stands for the crisis turn when that
    # is not in the history: `continues` reads the next turn (그냥 해본 소리예요 is a retraction; 며느리한테 맡겼어 is
    # calm). Dev (h8 to h11) conversations +0.2 pt.
    if recalls_crisis and not about_others and not crisis_in_window:
        if latest.level == "crisis" and (latest.by_rule or latest.crisis_score >= SURE_AGAIN):
            return latest
        if _fires(model, "continues", texts[-1]):
            return Assessment("crisis", (*reasons, "context:crisis_continues"), latest.crisis_score)
        return Assessment("concern", (*reasons, "context:assistant_topic"), latest.crisis_score)
    if recalled and latest.level != "crisis":
        return Assessment("concern", (*reasons, "context:assistant_topic"), latest.crisis_score)
    if latest.level == "crisis":
        previous = texts[-WINDOW - 1 : -1]
        if not recalled and _explained_by_topic(previous, [assess_message(t) for t in previous], latest, model):
            return Assessment("none", (*reasons, "context:benign_topic", "lowered_by_scope"), latest.crisis_score)
        return latest
    window = texts[-WINDOW - 1 :]
    # Only a crisis no single turn holds: an earlier turn that was a crisis by itself is not found again in the join.
    if len(window) > 1 and not crisis_in_window and _confirmed(assess_message(" ".join(window))):
        return Assessment("crisis", (*reasons, "context:across_turns"), latest.crisis_score)
    return latest


def assess(messages: list[dict], assess_message: Callable[[str], Assessment], model: LinearModel) -> Assessment:
    """The latest user turn's level: each of the last ``HISTORY`` user turns graded in context, oldest first."""
    turns = [m for m in messages if isinstance(m.get("content"), str) and m.get("role") in ("user", "assistant")]
    users = [i for i, t in enumerate(turns) if t["role"] == "user"]
    if not users:
        return Assessment("none", ())
    seen: dict[str, Assessment] = {}

    def assess_once(text: str) -> Assessment:  # each turn is read by several of the later ones
        if text not in seen:
            seen[text] = assess_message(text)
        return seen[text]

    model = _ScoredOnce(model)

    start = max(0, len(users) - HISTORY)
    # Older turns are read as plain messages: a crisis long ago still keeps the 109 footer in view.
    graded = [assess_once(turns[i]["content"]) for i in users[:start]]
    for k in range(start, len(users)):
        if (
            graded
            and graded[-1].level == "crisis"
            and _answered_about_someone_else(turns, users[k - 1], users[k], model)
        ):
            graded[-1] = Assessment("concern", (*graded[-1].reasons, SOMEONE_ELSE), graded[-1].crisis_score)
        graded.append(_in_context(turns, users[: k + 1], graded, assess_once, model))
    return graded[-1]


def _answered_about_someone_else(turns: list[dict], before: int, after: int, model: LinearModel) -> bool:
    """Whether the assistant's answer to a crisis turn took it as someone else's risk (아드님 팔에 상처를 보셨다니).

    The message alone often cannot say whose risk it is (우리 영감이 요새 자꾸 죽고 싶다 카네; 아들 팔에 칼자국), the
    counsellor's answer does; the layer's own crisis reply is about the user and never fires the head."""
    return any(
        t["role"] == "assistant" and not _layers_own(t["content"]) and _fires(model, "others", t["content"])
        for t in turns[before + 1 : after]
    )


def _layers_own(text: str) -> bool:
    """The layer's fixed crisis reply: about the user, whatever a head reads in its sentence about 가까운 사람."""
    return text.strip() == CRISIS_REPLY.strip()


class _ScoredOnce:
    """The context model for one conversation, each text's head scores computed once: every assistant turn in the
    window is read by several questions (screening, recalls, others) for each later user turn."""

    def __init__(self, model: LinearModel):
        self._model = model
        self._scores: dict[tuple[str, bool], dict[str, float]] = {}

    def score(self, text: str, windows: bool = True) -> dict[str, float]:
        key = (text, windows)
        if key not in self._scores:
            self._scores[key] = self._model.score(text, windows=windows)
        return self._scores[key]

    def fires(self, scores: dict[str, float], head: str) -> bool:
        return self._model.fires(scores, head)
