"""Stage 5: conversation context. The latest user message is read with what came before it.

- The assistant's last question: an answer to a screening question about suicide or self-harm that is not a clear
  no (응, 네, 가끔요, 맨날 들어, 모르겠어) is `crisis`, as a clinician would take it; a clear no is at least `concern`.
- The last few user turns read together: a crisis that only exists across turns (escalation: distress, then
  "그래서 오늘 밤에 하려고"; a phrase split over two messages) is `crisis`.
- After an earlier crisis turn: a method, place or amount question, or a light retraction right after it
  (농담이야, 신경 쓰지 마) stays `crisis`; anything else is at least `concern`, so that "고마워" is answered by the
  model with the 109 footer instead of the fixed crisis reply again. The latest message is a crisis again when a
  rule finds one or the classifier is sure (``CONFIRM_AFTER_CRISIS``), not on a borderline score. An earlier turn
  that was a crisis only by a borderline score carries nothing forward: a false alarm on 외로워요 must not put the
  rest of an ordinary conversation under the 109 footer.
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
    r"아니|아닌|아님|아뇨|아냐|아녜|ㄴㄴ|^노|^놉|^no|nope|전혀|절대|그정도는|그런건|그런생각은|그런적은|없어|없었|없습|안해|안했|안들|않아|않았|않습"
)
_RETRACTION = re.compile(
    r"농담|장난|드립|ㅈㅅ|해본말|해본얘기|그냥한말|한말이|얘기였|말이었|뜻이었|뜻이야|말한거|놀라|믿었|신경ㄴ|신경쓰지|신경꺼"
    r"|신경안써|신경끄|잊어|취소|아무것도아니|아무일도아니|별거아니|뻥|거짓말이|진심아니|진지하게받|심각하게듣|심각하게받|오버하"
    r"|과민|아니야됐어|아냐됐어|오해|걱정마|걱정하지마|걱정안해도|괜히말|없던걸로|없던일|kidding|joke|jk|lol"
)
# An answer whose first word is a yes is a yes, whatever follows (ㅇㅇ 차라리 다치면 안 가도 되니까); read on the raw
# text, since the normalised one joins the words (예전엔 … must not read as 예).
_AFFIRM = re.compile(r"^\s*(?:응+|웅|ㅇㅇ+|ㅇ|네+|넵|넹|예|yes|yeah|yep|맞아요?)(?=$|[\s.,!?~…ㅠㅜ])", re.IGNORECASE)
# A bare denial right after a stated plan (아니 캠핑 가려고 산 거야) is a retraction, unless it answers a screening
# question.
_DENIAL = re.compile(r"^(?:아니|아냐|아뇨|no\b)")
_METHOD_OR_MEANS = re.compile(
    r"방법|몇알|몇개|몇층|몇미터|얼마나|얼마면|어느정도|높이|높은|건물|알약|수면제|약을|약은|약이|약몇|끈|밧줄|옥상|난간|다리|한강"
    r"|바다|바닷가|칼|면도|번개탄|연탄|안아프|고통없|편하게|확실|한번에|치사|충분|어디서|어디가|어디야|어디에|추천|뭘로|실패"
    r"|할거|할꺼|할게|하기로|결심|정했|말리지|그래도|진통제|감기약|해열제|약국|한통|한병|몇통|몇병|다먹|전부|몽땅"
    r"|이면돼|이면됨|이면되|으면돼|으면됨|하면돼|하면됨|되나|될까|where|how|pil"
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


_NEGATION_LEMMAS = frozenset({"아니다/VCN", "않다/VX", "없다/VA", "안/MAG", "못/MAG"})


def _denies(text: str, normalised: str) -> bool:
    """A clear no: a word of denial, or a negation in the lemma view (생각은 없어요, 그건 아님, 안 해요)."""
    if _AFFIRM.search(text):
        return False
    if _NO.search(normalised):
        return True
    return any(lemma in _NEGATION_LEMMAS for sentence in morph.sentences(text) for lemma in sentence.lemmas)


def _confirmed(assessment: Assessment) -> bool:
    """A crisis found by a rule that decides or by a classifier this sure, not by a borderline score."""
    return assessment.level == "crisis" and (assessment.by_rule or assessment.crisis_score >= CONFIRM_AFTER_CRISIS)


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
    confirmed_crisis = [i for i in earlier_crisis if _confirmed(earlier[i])]
    screening = _screening_question(turns, user_positions[-1])
    retracted = _RETRACTION.search(answer) or (not screening and _DENIAL.search(answer))
    if earlier_crisis and earlier_crisis[-1] == len(earlier) - 1 and retracted:
        return Assessment("crisis", (*reasons, "context:retraction_after_crisis"))
    if screening:
        if _denies(texts[-1], answer):
            if latest.level == "crisis" and latest.by_rule:
                return latest
            return Assessment("concern", (*reasons, "context:screening_denied"), latest.crisis_score)
        return Assessment("crisis", (*reasons, "context:screening_affirmed"))

    if confirmed_crisis:
        recent = len(earlier) - confirmed_crisis[-1] <= WINDOW
        if recent and _METHOD_OR_MEANS.search(answer):
            return Assessment("crisis", (*reasons, "context:method_after_crisis"))
        if _confirmed(latest):
            return latest
        # An unconfirmed crisis (a borderline classifier score) after a crisis turn is answered as concern.
        return Assessment("concern", (*reasons, "context:earlier_crisis"), latest.crisis_score)
    if latest.level == "crisis":
        if _explained_by_topic(texts[-WINDOW - 1 : -1], earlier[-WINDOW:], latest):
            return Assessment("none", (*reasons, "context:benign_topic", "lowered_by_scope"), latest.crisis_score)
        return latest
    if _confirmed(together):
        return Assessment("crisis", (*reasons, "context:across_turns"))
    if earlier and earlier[-1].level == "concern" and (_precise(earlier[-1]) or _about_someone_else(texts[-2])):
        return Assessment(worst(latest.level, "concern"), (*reasons, "context:earlier_concern"))
    return latest
