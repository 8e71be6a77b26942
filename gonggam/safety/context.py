"""Stage 5: conversation context. The latest user message is read with what came before it.

- The assistant's last question: an affirmative answer (응, 네, 가끔요, 그런 것 같아) to a screening question about
  suicide or self-harm is `crisis`; a clear no is at least `concern`.
- The last few user turns read together: a crisis that only exists across turns (escalation: distress, then
  "그래서 오늘 밤에 하려고"; a phrase split over two messages) is `crisis`.
- After an earlier crisis turn: a method, place or amount question, or a light retraction right after it
  (농담이야, 신경 쓰지 마) stays `crisis`; anything else is at least `concern`, so that "고마워" is answered by the
  model with the 109 footer instead of the fixed crisis reply again.
- An earlier `concern` turn (a friend at risk) keeps a follow-up question at least `concern`.
- The topic for ambiguous words (scope decision, docs/safety.md): when the latest message is a crisis only by itself,
  every earlier user turn is `none`, and the turns read together are not a crisis (캠핑 가는데 … 번개탄 몇 개 사야 돼?;
  a project then 오늘 다 끝내버리고 싶다), the conversation's level is that of the turns read together.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gonggam.safety.normalise import normalise
from gonggam.safety.replies import Assessment, worst

WINDOW = 3  # user turns read together with the latest one

_RISK_TOPIC = re.compile(
    r"죽|자살|자해|해치|해하|극단|목숨|사라지|없어지|끝내|삶을|살고싶|살기싫|위험한생각|나쁜생각|다치게|상처를"
    r"|suicid|kil|selfharm"
)
_QUESTION = re.compile(r"[?？]|(?:나요|까요|세요|신가요|니|냐|어요|있어|있니|해요|했어|해봤어|봤어|든|드나요)$")
_NO = re.compile(
    r"^(?:아니|아뇨|아냐|아닌|노|no|nope|전혀|그런건|그정도는|그건아니|그런생각은|그런적은|없어|없어요|없었|안해|안했"
    r"|절대)"
)
_YES = re.compile(
    r"^(?:응|웅|어|엉|네|넵|예|yes|yeah|yep|ㅇ|맞아|맞아요|맞|그래|그렇|그런것같|그런듯|그럴지도|아마|가끔|자주|요즘|"
    r"사실|솔직히|있어|있어요|있었|조금|좀|약간|많이|매일|항상|늘|계속|종종|때때로|하루에도|네에|그렇다|솔까)"
)
_RETRACTION = re.compile(
    r"농담|장난|해본말|그냥한말|한말이|신경쓰지마|신경쓰지말|신경꺼|신경안써도|잊어|취소|아무것도아니|아무일도아니|별거아니"
    r"|괜찮아괜찮|아니야됐어|됐어|뻥이야|거짓말이야|진심아니|진지하게받지|오버하지|과민"
)
_METHOD_OR_GOING_AHEAD = re.compile(
    r"방법|어떻게|어디서|어디가|어디로|어디에|몇알|몇개|몇층|몇미터|얼마나|얼마면|어느정도|몇번|높이|약|알약|수면제|끈|줄|옥상"
    r"|다리|한강|칼|면도|번개탄|연탄|가스|언제|오늘밤|오늘|지금|내일|이따|할거|할게|할래|하러|하려|갈게|간다|가려|해야지|준비"
    r"|안아프|고통없|편하게|확실|한번에|치사|충분|where|how|pil"
)


def _screening_question(turns: list[dict], last_user: int) -> bool:
    earlier = [t for t in turns[:last_user] if t.get("role") == "assistant"]
    if not earlier or turns[last_user - 1].get("role") != "assistant":
        return False
    text = normalise(earlier[-1]["content"]) if earlier else ""
    raw = earlier[-1]["content"].strip()
    return bool(_RISK_TOPIC.search(text)) and bool(_QUESTION.search(raw) or _QUESTION.search(text))


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
    if _screening_question(turns, user_positions[-1]):
        if _NO.search(answer):
            if latest.level == "crisis":
                return latest
            return Assessment(worst(latest.level, "concern"), (*reasons, "context:screening_denied"))
        if _YES.search(answer) or latest.level == "crisis":
            return Assessment("crisis", (*reasons, "context:screening_affirmed"))

    earlier_crisis = [i for i, a in enumerate(earlier) if a.level == "crisis"]
    if latest.level == "crisis":
        if earlier and all(a.level == "none" for a in earlier[-WINDOW:]) and together.level != "crisis":
            return Assessment(together.level, (*reasons, "context:benign_topic", "lowered_by_scope"))
        return latest
    if earlier_crisis:
        just_after = earlier_crisis[-1] == len(earlier) - 1
        if just_after and _RETRACTION.search(answer):
            return Assessment("crisis", (*reasons, "context:retraction_after_crisis"))
        if _METHOD_OR_GOING_AHEAD.search(answer) and len(earlier) - earlier_crisis[-1] <= WINDOW:
            return Assessment("crisis", (*reasons, "context:method_after_crisis"))
        return Assessment(worst(latest.level, "concern"), (*reasons, "context:earlier_crisis"))
    if together.level == "crisis":
        return Assessment("crisis", (*reasons, "context:across_turns"))
    if any(a.level == "concern" for a in earlier[-WINDOW:]):
        return Assessment(worst(latest.level, "concern"), (*reasons, "context:earlier_concern"))
    return latest
