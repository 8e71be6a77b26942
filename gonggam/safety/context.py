"""Stage 5: conversation context. The latest user message is read with what came before it.

- The assistant's last question: an affirmative answer (응, 네, 가끔요, 그런 것 같아) to a screening question about
  suicide or self-harm is `crisis`; a clear no is at least `concern`.
- The last few user turns read together: a crisis that only exists across turns (escalation: distress, then
  "그래서 오늘 밤에 하려고"; a phrase split over two messages) is `crisis`.
- After an earlier crisis turn: a method, place or amount question, or a light retraction right after it
  (농담이야, 신경 쓰지 마) stays `crisis`; anything else is at least `concern`, so that "고마워" is answered by the
  model with the 109 footer instead of the fixed crisis reply again. The latest message is a crisis again when a
  rule finds one or the classifier is sure (``CONFIRM_AFTER_CRISIS``), not on a borderline score.
- The turn before, when a rule or a cue made it `concern` (a friend at risk), keeps a follow-up at least `concern`.
- The topic for ambiguous words (scope decision, docs/safety.md): when the latest message is a crisis made only of
  words with an everyday sense (끝내다, 번개탄, 몇 알: ``AMBIGUOUS_RULES`` or the classifier alone), every earlier
  user turn is `none` and they name a benign topic (캠핑, 프로젝트, 카페, 약국 …), the conversation is `none`
  (캠핑 가는데 … 번개탄 몇 개 사야 돼?; a project, then 오늘 다 끝내버리고 싶다).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gonggam.safety import morph, rules
from gonggam.safety.normalise import normalise
from gonggam.safety.replies import Assessment, worst

WINDOW = 3  # user turns read together with the latest one
# After an earlier crisis the conversation is at least `concern` (109 stays in view); repeating the fixed crisis
# reply then needs a rule or a classifier this sure, not a borderline score on "고마워, 약 엄마한테 줬어".
CONFIRM_AFTER_CRISIS = 0.6

_RISK_TOPIC = re.compile(
    r"죽|자살|자해|해치|해하|극단|목숨|사라지|없어지|끝내|삶을|살고싶|살기싫|위험한생각|나쁜생각|다치게|상처를"
    r"|suicid|kil|selfharm"
)
_QUESTION = re.compile(r"[?？]|(?:나요|까요|세요|신가요|니|냐|어요|있어|있니|해요|했어|해봤어|봤어|든|드나요)$")
_NO = re.compile(
    r"아니|아뇨|아냐|^노|^no|nope|전혀|절대|그정도는|그런건|그런생각은|그런적은|없어|없었|없습|안해|안했|안들|않아|않았|않습"
)
_YES = re.compile(
    r"^(?:응|웅|어|엉|네|넵|예|yes|yeah|yep|ㅇ|맞아|맞아요|맞|그래|그렇|그런것같|그런듯|그럴지도|아마|가끔|자주|요즘|"
    r"사실|솔직히|있어|있어요|있었|조금|좀|약간|많이|매일|항상|늘|계속|종종|때때로|하루에도|네에|그렇다|솔까)"
)
_RETRACTION = re.compile(
    r"농담|장난|드립|ㅈㅅ|해본말|해본얘기|그냥한말|한말이|얘기였|말이었|뜻이었|뜻이야|말한거|놀라|믿었|신경ㄴ|신경쓰지|신경꺼"
    r"|신경안써|잊어|취소|아무것도아니|아무일도아니|별거아니|뻥|거짓말이|진심아니|진지하게받|심각하게듣|심각하게받|오버하"
    r"|과민|아니야됐어|아냐됐어|kidding|joke|jk|lol"
)
_METHOD_OR_MEANS = re.compile(
    r"방법|몇알|몇개|몇층|몇미터|얼마나|얼마면|어느정도|높이|높은|건물|알약|수면제|약을|약은|약이|약몇|끈|밧줄|옥상|난간|다리|한강"
    r"|바다|바닷가|칼|면도|번개탄|연탄|안아프|고통없|편하게|확실|한번에|치사|충분|어디서|어디가|어디야|어디에|추천|뭘로|실패"
    r"|할거|할꺼|할게|하기로|결심|정했|말리지|그래도|where|how|pil"
)
# A classifier this sure of a crisis is not explained away by an earlier topic.
TOPIC_CANNOT_EXPLAIN = 0.9
# Rules whose words have an everyday sense (끝내다, 번개탄, 몇 알): an earlier benign topic can explain them.
AMBIGUOUS_RULES = frozenset({"rule:ending_it", "rule:charcoal_or_gas", "rule:pills_or_poison", "rule:method_seeking"})


def _screening_question(turns: list[dict], last_user: int) -> bool:
    earlier = [t for t in turns[:last_user] if t.get("role") == "assistant"]
    if not earlier or turns[last_user - 1].get("role") != "assistant":
        return False
    text = normalise(earlier[-1]["content"]) if earlier else ""
    raw = earlier[-1]["content"].strip()
    return bool(_RISK_TOPIC.search(text)) and bool(_QUESTION.search(raw) or _QUESTION.search(text))


def _precise(assessment: Assessment) -> bool:
    """Whether a rule, a scope exception or a lemma cue took part (not the classifier's risk score alone)."""
    return any(r.startswith(("rule:", "scope:", "cue:")) for r in assessment.reasons)


def _about_someone_else(text: str) -> bool:
    return "third_party" in rules.scope_cues(morph.sentences(text))


def _explained_by_topic(previous: list[str], assessed: list[Assessment], latest: Assessment) -> bool:
    """A crisis made only of everyday-sense words, after user turns that are all `none` and name a benign topic."""
    if not previous or any(a.level != "none" for a in assessed) or (latest.by_rule and not _only_ambiguous(latest)):
        return False
    if latest.crisis_score >= TOPIC_CANNOT_EXPLAIN:
        return False
    return "topic" in rules.scope_cues(morph.sentences(" ".join(previous)))


def _only_ambiguous(assessment: Assessment) -> bool:
    return {r for r in assessment.reasons if r.startswith("rule:")} <= AMBIGUOUS_RULES


def assess(messages: list[dict], assess_message: Callable[[str], Assessment]) -> Assessment:
    turns = [m for m in messages if isinstance(m.get("content"), str) and m.get("role") in ("user", "assistant")]
    user_positions = [i for i, t in enumerate(turns) if t["role"] == "user"]
    if not user_positions:
        return Assessment("none", ())
    texts = [turns[i]["content"] for i in user_positions]
    latest = assess_message(texts[-1])
    earlier = [assess_message(t) for t in texts[:-1]]
    window = texts[-WINDOW - 1 :]
    together = assess_message(" ".join(window)) if len(window) > 1 else latest
    reasons = list(latest.reasons)

    answer = normalise(texts[-1])
    earlier_crisis = [i for i, a in enumerate(earlier) if a.level == "crisis"]
    if earlier_crisis and earlier_crisis[-1] == len(earlier) - 1 and _RETRACTION.search(answer):
        return Assessment("crisis", (*reasons, "context:retraction_after_crisis"))
    if _screening_question(turns, user_positions[-1]):
        if _NO.search(answer):
            if latest.level == "crisis" and latest.by_rule:
                return latest
            return Assessment("concern", (*reasons, "context:screening_denied"), latest.crisis_score)
        if _YES.search(answer) or latest.level == "crisis":
            return Assessment("crisis", (*reasons, "context:screening_affirmed"))

    if earlier_crisis:
        recent = len(earlier) - earlier_crisis[-1] <= WINDOW
        if recent and _METHOD_OR_MEANS.search(answer):
            return Assessment("crisis", (*reasons, "context:method_after_crisis"))
        if latest.level == "crisis" and (latest.by_rule or latest.crisis_score >= CONFIRM_AFTER_CRISIS):
            return latest
        # An unconfirmed crisis (a borderline classifier score) after a crisis turn is answered as concern.
        return Assessment("concern", (*reasons, "context:earlier_crisis"), latest.crisis_score)
    if latest.level == "crisis":
        if _explained_by_topic(texts[-WINDOW - 1 : -1], earlier[-WINDOW:], latest):
            return Assessment("none", (*reasons, "context:benign_topic", "lowered_by_scope"), latest.crisis_score)
        return latest
    if together.level == "crisis":
        return Assessment("crisis", (*reasons, "context:across_turns"))
    if earlier and earlier[-1].level == "concern" and (_precise(earlier[-1]) or _about_someone_else(texts[-2])):
        return Assessment(worst(latest.level, "concern"), (*reasons, "context:earlier_concern"))
    return latest
