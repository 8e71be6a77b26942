"""Stage 4: how the rules and the classifier meet, for one user message and for one model reply.

- Both stages run on every message; the worse level wins, with two kinds of scope decision (docs/safety.md):
- a crisis rule decides alone unless the training corpus shows it imprecise: a rule whose crisis verdicts there were
  right less than 65% of the time (over at least 10) is a *signal* (train.py measures this and stores the list in
  the message model). A signal is named in the reasons (signal:NAME) and left to the classifier's reading of the
  whole message: its words (자해, 번개탄, 먼저 가서 미안해) appear in past, third-party and everyday uses as often as in
  a crisis;
- a crisis found by the classifier alone is lowered when an exception rule matched the message (news, fiction,
  statistics, prevention work, barbecue charcoal, a deleted post, a task to finish, a third party, a negated or
  past wish, ...): to the exception's level (`concern` for a third party, a negated or a past wish, else `none`),
  except that a classifier sure of the crisis (``SURE_CRISIS``) is not lowered to `none`: the exception's words can
  sit in a crisis that denies them;
- a crisis found by a rule is lowered only when the classifier disagrees (below its crisis threshold) AND a scope
  cue says why: a third party, a past and recovered wish or a negation in the lemma view → `concern`; a benign
  topic (a game, a film, work, camping) → `none` (if it sees no risk either); or the learned scope: the classifier's
  `scope` head, trained on the concern categories (a third party, the past, a negation, grief, weariness) against
  crisis messages, is at least as sure as its threshold (chosen on dev for the recall target; the lemma cues miss
  "죽고 싶었는데 전학 가고 나서 완전 달라졌어요") → `concern`.
- a message that is only a greeting, thanks, goodbye, one-word answer (rules.PHATIC) or punctuation is `none`
  unless a rule finds a crisis in it; the conversation context still reads it (응 to a screening question).
- Nothing else lowers a crisis. A model reply is `crisis` (replaced) when an output rule or the reply classifier
  fires. One scope decision: an output rule's match in a sentence that refuses method talk (자살 방법은 알려 드릴 수
  없어요) does not count; the classifier still reads the whole reply.

`Assessment.reasons` names the stages, rules and scores (rule:NAME, scope:NAME, classifier:crisis=0.93); never text.
"""

from __future__ import annotations

from dataclasses import dataclass

from gonggam.safety import morph, rules
from gonggam.safety.classifier import LinearModel
from gonggam.safety.normalise import normalise_view
from gonggam.safety.replies import Assessment, Level, worst

_CONCERN_CUES = ("third_party", "past", "negated")
# An exception rule's words can sit in a crisis that denies them (캠핑용 아니고 저 쓰려고요; 뉴스에 나오는 그거 나도
# 할까 봐): a classifier this sure of a crisis is not lowered to `none` by an exception. A concern-level exception
# (a third party, a negated or past wish, 이렇게 살기 싫어) still lowers it to `concern`: 109 stays in view.
SURE_CRISIS = 0.9


@dataclass(frozen=True)
class Evidence:
    """What the stages found in one message, before the thresholds are applied."""

    hits: tuple[rules.Hit, ...]
    cues: frozenset[str]
    scores: dict[str, float]
    phatic: bool = False  # only a greeting, thanks or one-word answer


def rule_evidence(text: str) -> tuple[tuple[rules.Hit, ...], frozenset[str], bool]:
    """What the rules find in a message, the scope cues of its lemma view, and whether it is only phatic."""
    sentences = morph.sentences(text)
    norm = normalise_view(text)
    hits = rules.message_hits(norm)
    # Where an exception already placed the message (a third party, a negated or past wish), the lemma rules would
    # only repeat the crisis phrase it masked: they count when no concern-level exception matched.
    if not any(rules.SCOPE_DECISIONS.get(h.name) == "concern" for h in hits):
        hits += rules.lemma_hits(sentences)
    return tuple(hits), rules.scope_cues(sentences), rules.is_phatic(norm) or rules.only_punctuation(text)


def gather(text: str, model: LinearModel) -> Evidence:
    hits, cues, phatic = rule_evidence(text)
    return Evidence(hits, cues, model.score(text), phatic)


def classifier_level(scores: dict[str, float], thresholds: dict[str, float]) -> Level:
    if scores["crisis"] >= thresholds["crisis"]:
        return "crisis"
    return "concern" if scores["risk"] >= thresholds["risk"] else "none"


def without_signals(hits: tuple[rules.Hit, ...], signals: frozenset[str]) -> tuple[tuple[rules.Hit, ...], list[str]]:
    """The hits that may decide, and the names of the crisis rules among ``signals`` that fired (they do not decide)."""
    demoted = [h.name for h in hits if h.level == "crisis" and h.name in signals]
    return tuple(h for h in hits if h.level != "crisis" or h.name not in signals), demoted


def decide(evidence: Evidence, thresholds: dict[str, float], signals: frozenset[str] = frozenset()) -> Assessment:
    hits, demoted = without_signals(evidence.hits, signals)
    cues, scores = evidence.cues, evidence.scores
    rule_level: Level = worst(*(h.level for h in hits))  # concern-level exceptions (a third party) count
    exceptions = [h.name for h in hits if h.name in rules.SCOPE_DECISIONS]
    model_level = classifier_level(scores, thresholds)
    model_crisis = model_level == "crisis"
    reasons = [f"rule:{n}" for n in dict.fromkeys(h.name for h in hits if h.name not in rules.SCOPE_DECISIONS)]
    reasons += [f"scope:{name}" for name in dict.fromkeys(exceptions)]
    reasons += [f"signal:{name}" for name in dict.fromkeys(demoted)]
    reasons.append("classifier:" + ",".join(f"{name}={value:.2f}" for name, value in scores.items()))
    score = scores["crisis"]
    if rule_level != "crisis" and evidence.phatic:
        return Assessment("none", (*reasons, "scope:phatic"), score)
    if rule_level == "crisis":
        if not model_crisis:
            if found := [c for c in _CONCERN_CUES if c in cues]:
                return Assessment("concern", (*reasons, f"cue:{found[0]}", "lowered_by_scope"), score)
            if model_level == "none" and "topic" in cues:
                return Assessment("none", (*reasons, "cue:topic", "lowered_by_scope"), score)
            if scores.get("scope", 0.0) >= thresholds.get("scope", 2.0):
                return Assessment("concern", (*reasons, "cue:learned_scope", "lowered_by_scope"), score)
        return Assessment("crisis", tuple(reasons), score, by_rule=True)
    if model_crisis and exceptions:
        scope_level = worst(*(rules.SCOPE_DECISIONS[name] for name in exceptions))
        if scope_level == "concern" or score < SURE_CRISIS:
            return Assessment(worst(rule_level, scope_level), (*reasons, "lowered_by_scope"), score)
    return Assessment(worst(rule_level, model_level), tuple(reasons), score)


def assess_message(text: str, model: LinearModel) -> Assessment:
    thresholds = {name: head.threshold for name, head in model.heads.items()}
    return decide(gather(text, model), thresholds, model.signal_rules)


def check_output(reply: str, model: LinearModel) -> Assessment:
    hits, refused = rules.output_evidence(reply)
    scores = model.score(reply)
    phatic = rules.is_phatic(normalise_view(reply))
    level: Level = "crisis" if hits or (model.fires(scores, "unsafe") and not phatic) else "none"
    reasons = [f"rule:{name}" for name in dict.fromkeys(h.name for h in hits)] + ["scope:refusal"] * refused
    return Assessment(level, (*reasons, f"classifier:unsafe={scores['unsafe']:.2f}"))
