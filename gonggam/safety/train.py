"""Train the message, reply and context classifiers on data/safety/ and write gonggam/safety/models/
(``make safety-model``).

    python -m gonggam.safety.train                        # the shipped models, byte for byte
    python -m gonggam.safety.train --extra my_labels.tsv  # add your own label<TAB>text lines (messages)

Training data: the train split plus data/safety/train_extra/ (training-only families). For each classifier the
regularisation strength C is chosen on the dev split (fit on the training data, score dev); the crisis threshold is
the highest that keeps the whole layer's dev recall (rules + classifier, as combine.py decides) at the target, and
the risk threshold the one that best separates concern from none on dev. The final model is fitted on training +
dev data with those settings. The test split is never read. liblinear with a fixed seed makes the files
reproducible; scikit-learn is needed only here, not to run the layer. The context classifier's three heads
(context.py) learn from data/safety/context/ and the turns of the labelled conversations, C chosen on dev's.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gonggam.safety import combine, corpus, features, rules
from gonggam.safety.classifier import MODEL_DIR, Head, LinearModel, row_values, segment_logit, sigmoid
from gonggam.safety.corpus import CorpusError, Example
from gonggam.safety.normalise import normalise_view
from gonggam.safety.replies import CONCERN_FOOTER, CRISIS_REPLY

C_GRID = (16.0, 64.0, 256.0, 1024.0)
# A crisis rule whose verdicts on the training messages were right less often than this, over at least SIGNAL_SUPPORT
# of them, is a signal (combine.py): the classifier's reading decides. Chosen on dev: 0.75 lowered false crises by
# another 0.8 pt but let plain statements through (죽음만이 해결책인 것 같아); below 0.65 only three rules change.
SIGNAL_PRECISION = 0.65
SIGNAL_SUPPORT = 10
CRISIS_RECALL_TARGET = 0.985  # on dev, for the whole layer: the bar on the test split is 0.98
UNSAFE_RECALL_TARGET = 0.98
THRESHOLDS = [round(t, 3) for t in np.arange(0.02, 0.981, 0.01)]


_segments: dict[str, list[np.ndarray]] = {}
# One progress bar on the terminal, the main process's: the worker's redrawn next to it would garble both lines.
_show_progress = True


def progress(items: list, desc: str):
    return tqdm(items, desc=desc, leave=False) if _show_progress else items


def segments_of(text: str) -> list[np.ndarray]:
    """A text's bucket indices, computed once per run: tuning and the final fit read the same 25,000 messages."""
    if text not in _segments:
        _segments[text] = [features.hashed(s) for s in features.segments(text)]
    return _segments[text]


def analyse(examples: list[Example]) -> list[tuple]:
    """The rules' evidence for each message, its features computed in the same pass (the lemma view is cached per
    text only briefly, so the two readings of a message must follow each other)."""
    evidence = []
    for example in progress(examples, "messages"):
        segments_of(example.text)
        evidence.append(combine.rule_evidence(example.text))
    return evidence


class Featurised:
    """Each text's bucket indices: the whole text (training rows) and its segments (scoring, as the layer does)."""

    def __init__(self, texts: list[str], desc: str):
        self.segments = [segments_of(t) for t in progress(texts, desc)]

    def matrix(self, idf: np.ndarray):
        from scipy.sparse import csr_matrix

        rows = [segments[0] for segments in self.segments]
        indptr = np.cumsum([0] + [len(r) for r in rows])
        values = np.concatenate([row_values(r, idf) for r in rows])
        return csr_matrix((values, np.concatenate(rows), indptr), shape=(len(rows), features.DIM), dtype=np.float64)

    def scores(self, weight: np.ndarray, bias: float, idf: np.ndarray) -> np.ndarray:
        return np.array([sigmoid(segment_logit(weight, idf, segments) + bias) for segments in self.segments])


def inverse_document_frequency(data: Featurised) -> np.ndarray:
    counts = np.zeros(features.DIM, dtype=np.float64)
    for segments in data.segments:
        counts[segments[0]] += 1
    return (np.log((1 + len(data.segments)) / (1 + counts)) + 1).astype(np.float32)


def fit(x, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(solver="liblinear", C=c, class_weight="balanced", random_state=0, max_iter=1000)
    model.fit(x, y)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def highest_threshold(recall_at: Callable[[float], float], target: float) -> float:
    """The highest threshold whose recall still meets the target. Recall never rises with the threshold (a higher one
    only takes classifier crises away), so a binary search finds it in 7 dev passes instead of 97."""
    low, high = 0, len(THRESHOLDS) - 1
    if recall_at(THRESHOLDS[low]) < target:
        return THRESHOLDS[0]
    while low < high:  # THRESHOLDS[low] passes; find the last that does
        middle = (low + high + 1) // 2
        if recall_at(THRESHOLDS[middle]) >= target:
            low = middle
        else:
            high = middle - 1
    return THRESHOLDS[low]


def rule_precision(examples: list[Example], evidence: list) -> dict[str, list[int]]:
    """Each crisis rule's verdicts on labelled messages: [right, all] (the rules alone, as combine.py applies them)."""
    counts: dict[str, list[int]] = {}
    never = {"crisis": 2.0, "risk": 2.0}  # no classifier: the rules and their scope decisions alone
    for example, (hits, cues, phatic) in zip(examples, evidence, strict=True):
        if combine.decide(combine.Evidence(hits, cues, {"crisis": 0.0, "risk": 0.0}, phatic), never).level != "crisis":
            continue
        for name in {h.name for h in hits if h.level == "crisis"}:
            tally = counts.setdefault(name, [0, 0])
            tally[0] += example.label == "crisis"
            tally[1] += 1
    return dict(sorted(counts.items()))


def signal_rules(precision: dict[str, list[int]]) -> frozenset[str]:
    """The crisis rules shown imprecise; a rule with too few verdicts to judge keeps deciding."""
    return frozenset(
        name
        for name, (right, total) in precision.items()
        if total >= SIGNAL_SUPPORT and right / total < SIGNAL_PRECISION
    )


# The message classifier's heads: which examples each learns from and which are its positives (None: left out).
# `scope` learns the concern categories (a third party, the past, a negation, grief, weariness) against crisis
# messages: the learned form of the scope cues, which lowers a rule's crisis the classifier disagrees with (combine.py).
MESSAGE_HEADS: dict[str, Callable[[Example], bool | None]] = {
    "crisis": lambda e: e.label == "crisis",
    "risk": lambda e: e.label != "none",
    "scope": lambda e: None if e.label == "none" else e.label == "concern",
}
SCOPE_THRESHOLDS = (0.8, 0.9, 0.95, 0.98, 1.01)  # 1.01: the learned scope never lowers anything


def head_fit(x, examples: list[Example], is_positive: Callable[[Example], bool | None], c: float):
    rows = [i for i, e in enumerate(examples) if is_positive(e) is not None]
    positive = np.array([bool(is_positive(examples[i])) for i in rows])
    if positive.all() or not positive.any():
        raise CorpusError("a classifier head needs training examples of both its classes; the data has only one.")
    return fit(x[rows], positive, c)


def tune_messages(train: list[Example], dev: list[Example], signals: frozenset[str]) -> dict:
    """C and the thresholds, from dev measurements of the whole layer (rules that decide + classifier)."""
    train_data, dev_data = Featurised([e.text for e in train], "train"), Featurised([e.text for e in dev], "dev")
    idf = inverse_document_frequency(train_data)
    x = train_data.matrix(idf)
    evidence = [combine.rule_evidence(e.text) for e in dev]
    gold = np.array([e.label for e in dev])
    all_rows, crisis_rows = np.arange(len(dev)), np.flatnonzero(gold == "crisis")
    sweep = []
    fitted: dict[float, dict[str, np.ndarray]] = {}
    for c, scope_t in itertools.product(C_GRID, SCOPE_THRESHOLDS):
        if c not in fitted:  # the heads' dev scores depend on C only
            fitted[c] = {
                n: dev_data.scores(*head_fit(x, train, positive, c), idf) for n, positive in MESSAGE_HEADS.items()
            }
        scores = fitted[c]
        risk = scores["risk"]

        def levels(crisis_t: float, risk_t: float, rows=all_rows, scores=scores, scope_t=scope_t) -> np.ndarray:
            thresholds = {"crisis": crisis_t, "risk": risk_t, "scope": scope_t}
            return np.array(
                [
                    combine.decide(
                        combine.Evidence(hits, cues, {n: float(v[i]) for n, v in scores.items()}, phatic),
                        thresholds,
                        signals,
                    ).level
                    for i, (hits, cues, phatic) in ((i, evidence[i]) for i in rows)
                ]
            )

        risk_t = max(THRESHOLDS, key=lambda t: float(np.mean((risk >= t) == (gold != "none"))))
        crisis_t = highest_threshold(
            lambda t, r=risk_t: float(np.mean(levels(t, r, crisis_rows) == "crisis")), CRISIS_RECALL_TARGET
        )
        found = levels(crisis_t, risk_t)
        sweep.append(
            {
                "C": c,
                "crisis_threshold": crisis_t,
                "risk_threshold": risk_t,
                "scope_threshold": scope_t,
                "dev_crisis_recall": float(np.mean(found[gold == "crisis"] == "crisis")),
                "dev_false_crisis": float(np.mean(found[gold != "crisis"] == "crisis")),
                "dev_concern_agreement": float(np.mean(found[gold == "concern"] == "concern")),
            }
        )
        print(f"  messages {sweep[-1]}", file=sys.stderr)
    best = min(sweep, key=lambda s: (s["dev_false_crisis"], -s["dev_crisis_recall"], s["C"]))
    return {
        "C": best["C"],
        "thresholds": {n: best[f"{n}_threshold"] for n in MESSAGE_HEADS},
        "sweep": sweep,
    }


def tune_replies(train: list[Example], dev: list[Example]) -> dict:
    train_data, dev_data = Featurised([e.text for e in train], "train"), Featurised([e.text for e in dev], "dev")
    idf = inverse_document_frequency(train_data)
    x = train_data.matrix(idf)
    ruled = np.array([bool(rules.output_evidence(e.text)[0]) for e in dev])
    phatic = np.array([rules.is_phatic(normalise_view(e.text)) for e in dev])
    unsafe = np.array([e.label == "crisis" for e in dev])
    sweep = []
    for c in C_GRID:
        scores = dev_data.scores(*fit(x, np.array([e.label == "crisis" for e in train]), c), idf)
        threshold = highest_threshold(
            lambda t, s=scores: float(np.mean((ruled | ((s >= t) & ~phatic))[unsafe])), UNSAFE_RECALL_TARGET
        )
        flagged = ruled | ((scores >= threshold) & ~phatic)
        sweep.append(
            {
                "C": c,
                "unsafe_threshold": threshold,
                "dev_recall": float(np.mean(flagged[unsafe])),
                "dev_false_positive": float(np.mean(flagged[~unsafe])),
            }
        )
        print(f"  replies {sweep[-1]}", file=sys.stderr)
    best = min(sweep, key=lambda s: (s["dev_false_positive"], -s["dev_recall"], s["C"]))
    return {"C": best["C"], "thresholds": {"unsafe": best["unsafe_threshold"]}, "sweep": sweep}


def train_final(examples: list[Example], heads: dict[str, Callable[[Example], bool | None]], tuned: dict, info: dict):
    data = Featurised([e.text for e in examples], "final")
    idf = inverse_document_frequency(data)
    x = data.matrix(idf)
    fitted = {name: head_fit(x, examples, is_positive, tuned["C"]) for name, is_positive in heads.items()}
    return LinearModel(
        {n: Head(w, b, tuned["thresholds"][n]) for n, (w, b) in fitted.items()},
        idf,
        {**info, "C": tuned["C"], "selection": tuned["sweep"], "examples": len(examples)},
    )


# The context classifier's heads and the kind of turn each learns from (context.py reads them): an assistant turn that
# asks about suicide or self-harm, the answer to one, the user's turn after a crisis, the user's turn after one about
# someone else at risk (or the past, or a loss), the earlier user turns before an ambiguous word, and any assistant
# turn. `crisis` is the positive class of each: a screening question / not a clear no / the crisis goes on / the user
# turns to their own risk / the earlier turns give no everyday sense / the assistant speaks of suicide, self-harm or
# a crisis (recalling the user's words, reflecting a friend's risk, pointing to 109) / the assistant speaks of someone
# else's risk (아드님, 친구분, 어머님), not the user's.
CONTEXT_HEADS = {
    "screening": "assistant_turn",
    "affirmed": "screening_answer",
    "continues": "after_crisis",
    "followup": "after_concern",
    "topic": "topic_turn",
    "recalls": "assistant_topic",
    "others": "assistant_other",
}
CONTEXT_THRESHOLD = 0.5  # the classes are weighted to balance, so 0.5 is the even point
_AFTER_CRISIS = ("method_after_crisis", "retraction_after_plan", "after_crisis_calm")
_NO_SCREENING = ("ordinary", "benign_context", "third_party_followup")


_WHOSE = {
    "third_party_followup": "crisis",
    **dict.fromkeys(("screening_yes", "screening_no", "escalation", *_AFTER_CRISIS, *_NO_SCREENING[:2]), "none"),
}


def _first_user(conversation: corpus.Conversation) -> int:
    return next(i for i, t in enumerate(conversation.turns) if t["role"] == "user")


def conversation_turns(conversations: list[corpus.Conversation]) -> list[Example]:
    """The turns of labelled conversations that the context heads learn from, as examples of their kind."""
    found = []
    for c in conversations:
        last, before = c.turns[-1]["content"], c.turns[-2] if len(c.turns) > 1 else {"role": ""}
        if c.category.startswith("screening_"):
            found.append(Example(c.family, c.label, "screening_answer", last))
            if before["role"] == "assistant":
                found.append(Example(c.family, "crisis", "assistant_turn", before["content"]))
                found.append(Example(c.family, "crisis", "assistant_topic", before["content"]))
        elif c.category in _AFTER_CRISIS:
            found.append(Example(c.family, c.label, "after_crisis", last))
        elif c.category in _NO_SCREENING:
            found += [Example(c.family, "none", "assistant_turn", t["content"]) for t in c.turns if t["role"] != "user"]
        if c.category in ("ordinary", "benign_context"):
            found += [
                Example(c.family, "none", "assistant_topic", t["content"]) for t in c.turns if t["role"] != "user"
            ]
        if c.category == "third_party_followup":
            found.append(Example(c.family, "concern", "after_concern", last))
        # Whose risk: the assistant's turns after the user's first one, about someone else at risk or about the user.
        replies = [t["content"] for t in c.turns[_first_user(c) :] if t["role"] == "assistant"]
        if c.category in _WHOSE:
            found += [Example(c.family, _WHOSE[c.category], "assistant_other", text) for text in replies]
        earlier = [t["content"] for t in c.turns[:-1] if t["role"] == "user"]
        if c.category in ("benign_context", "escalation") and earlier:
            label = "none" if c.category == "benign_context" else "crisis"
            found.append(Example(c.family, label, "topic_turn", " ".join(earlier[-3:])))
    return found


def read_context(data: Path) -> tuple[list[Example], list[Example]]:
    """The context heads' training turns (data/safety/context/ and the train conversations) and the dev turns."""
    own = [
        Example(f"own:{i}", "none", kind, text)
        for i, text in enumerate((CRISIS_REPLY, CONCERN_FOOTER))
        for kind in ("assistant_turn", "assistant_other")
    ]
    written = [e for path in sorted((data / "context").glob("*.tsv")) for e in corpus.read_examples(path)]
    # Whole conversations written for training only: their turns, read like the train split's.
    for path in sorted((data / "context").glob("*.jsonl")):
        written += conversation_turns(corpus.read_conversations(path))
    unknown = {e.category for e in written} - set(CONTEXT_HEADS.values())
    if unknown:
        raise CorpusError(
            f"{data / 'context'}: unknown categories {sorted(unknown)}; use {list(CONTEXT_HEADS.values())}."
        )
    train = written + own + conversation_turns(corpus.conversations("train", data))
    return train, conversation_turns(corpus.conversations("dev", data))


def context_heads(x, examples: list[Example], c: float) -> dict[str, tuple[np.ndarray, float]]:
    """Each head fitted on the turns of its kind only (`crisis` is the positive class)."""
    return {
        head: head_fit(x, examples, lambda e, kind=kind: e.label == "crisis" if e.category == kind else None, c)
        for head, kind in CONTEXT_HEADS.items()
    }


def train_context(train: list[Example], dev: list[Example]) -> LinearModel:
    """C chosen on the dev conversations' turns (balanced accuracy of the three heads), then a fit on train + dev."""
    train_data, dev_data = Featurised([e.text for e in train], "train"), Featurised([e.text for e in dev], "dev")
    idf = inverse_document_frequency(train_data)
    x = train_data.matrix(idf)
    sweep = []
    for c in C_GRID:
        accuracy = {}
        for head, (weight, bias) in context_heads(x, train, c).items():
            rows = [i for i, e in enumerate(dev) if e.category == CONTEXT_HEADS[head]]
            fired = dev_data.scores(weight, bias, idf)[rows] >= CONTEXT_THRESHOLD
            gold = np.array([dev[i].label == "crisis" for i in rows])
            if gold.all() or not gold.any():
                continue  # the dev conversations hold one class of this turn (no turn to oneself after a report)
            accuracy[head] = float((np.mean(fired[gold]) + np.mean(~fired[~gold])) / 2)
        sweep.append({"C": c, "dev_balanced_accuracy": accuracy})
        print(f"  context {sweep[-1]}", file=sys.stderr)
    best = max(sweep, key=lambda s: (np.mean(list(s["dev_balanced_accuracy"].values())), -s["C"]))
    everything = train + dev
    data = Featurised([e.text for e in everything], "final")
    idf = inverse_document_frequency(data)
    fitted = context_heads(data.matrix(idf), everything, best["C"])
    info = {"kind": "context", "C": best["C"], "selection": sweep, "examples": len(everything)}
    return LinearModel({n: Head(w, b, CONTEXT_THRESHOLD) for n, (w, b) in fitted.items()}, idf, info)


def _training_conversations(data: Path) -> list[corpus.Conversation]:
    written = [c for path in sorted((data / "context").glob("*.jsonl")) for c in corpus.read_conversations(path)]
    return written + corpus.conversations("train", data)


def everyday_turns(conversations: list[corpus.Conversation]) -> list[Example]:
    """The user turns of the labelled conversations that are `none` read alone: every turn of an ordinary one, the
    turns before the last of a benign-context one (its last turn is `none` only in its context).

    They teach the message classifier what people say in the middle of a conversation with no risk (이제 성실하게
    갚기만 하면 돼요 마음이 좀 가벼워요, 요즘은 강아지 입양할까 생각 중이에요): the risk head read such plans and
    reliefs as recovery talk, `concern`. Dev conversations' turns train the final model only with the other dev
    data's weight: the thresholds are chosen on dev *messages*, which these are not."""
    found = []
    for c in conversations:
        if c.category not in ("ordinary", "benign_context"):
            continue
        users = [t["content"] for t in c.turns if t["role"] == "user"]
        kept = users if c.category == "ordinary" else users[:-1]
        found += [Example(c.family, "none", "conversation_turn", text) for text in kept]
    return found


def read_training(data: Path, extra_files: list[Path]) -> tuple[list[Example], list[Example]]:
    """Training messages (train split, train_extra/, --extra) and the extra files' messages."""
    messages = corpus.messages("train", data) + _own_texts()
    for path in sorted((data / "train_extra").glob("*.tsv")):
        if not path.stem.endswith("replies"):
            messages.extend(corpus.read_examples(path))
    messages += everyday_turns(_training_conversations(data) + corpus.conversations("dev", data))
    extra = []
    for path in extra_files:
        found, skipped = corpus.read_extra(path)
        extra += found
        if skipped:
            shown = ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else "")
            print(f"warning: {path}: skipped {len(skipped)} malformed line(s): line {shown}", file=sys.stderr)
    return messages + extra, extra


def read_replies(data: Path) -> list[Example]:
    """Training replies: the train split and data/safety/train_extra/*replies.tsv."""
    replies = corpus.replies("train", data) + _own_texts()
    for path in sorted((data / "train_extra").glob("*replies.tsv")):
        replies.extend(corpus.read_examples(path))
    return replies


def _own_texts() -> list[Example]:
    """The layer's own texts end up in histories and dumps: they must read as safe to both classifiers."""
    return [Example(f"own:{i}", "none", "own_text", text) for i, text in enumerate((CRISIS_REPLY, CONCERN_FOOTER))]


def train_message_model(
    messages: list[Example], dev_messages: list[Example], extra: list[Example], extra_files: list[Path]
) -> LinearModel:
    print(f"message classifier: {len(messages)} training and {len(dev_messages)} dev messages", file=sys.stderr)
    precision = rule_precision(messages, analyse(messages))
    signals = signal_rules(precision)
    print(f"  rules that are signals only: {', '.join(sorted(signals))}", file=sys.stderr)
    tuned = tune_messages(messages, dev_messages, signals)
    info = {
        "kind": "messages",
        "extra_files": [p.name for p in extra_files],
        "extra_examples": len(extra),
        "signal_rules": sorted(signals),
        "rule_precision": precision,
    }
    return train_final(messages + dev_messages, MESSAGE_HEADS, tuned, info)


def train_reply_and_context_models(
    replies: list[Example], dev_replies: list[Example], context_train: list[Example], context_dev: list[Example]
) -> tuple[LinearModel, LinearModel]:
    print(f"reply classifier: {len(replies)} training and {len(dev_replies)} dev replies", file=sys.stderr)
    tuned = tune_replies(replies, dev_replies)
    heads = {"unsafe": lambda e: e.label == "crisis"}
    reply_model = train_final(replies + dev_replies, heads, tuned, {"kind": "replies"})
    print(f"context classifier: {len(context_train)} training and {len(context_dev)} dev turns", file=sys.stderr)
    return reply_model, train_context(context_train, context_dev)


def _train_in_worker(sender, *data: list[Example]) -> None:
    """The reply and context classifiers, sent back through a pipe (a CorpusError too, for the parent to report)."""
    global _show_progress
    _show_progress = False
    try:
        sender.send(("done", train_reply_and_context_models(*data)))
    except CorpusError as error:
        sender.send(("error", error))
    finally:
        sender.close()


def train_models(args: argparse.Namespace) -> dict[str, LinearModel]:
    """The three classifiers, from the corpus and the --extra files (CorpusError: data it cannot learn from).

    Every file is read first, so bad input stops the command before any training. The reply and context classifiers
    share nothing with the message classifier, so a second process trains them while this one trains the messages'
    (liblinear and the morphological analyser use one core each); each model is the same computation as in one
    process, so the files stay byte for byte the same."""
    import multiprocessing

    messages, extra = read_training(args.data, args.extra)
    dev_messages = corpus.messages("dev", args.data)
    replies = (read_replies(args.data), corpus.replies("dev", args.data))
    context_turns = read_context(args.data)
    spawn = multiprocessing.get_context("spawn")
    receiver, sender = spawn.Pipe(duplex=False)
    worker = spawn.Process(target=_train_in_worker, args=(sender, *replies, *context_turns), daemon=True)
    worker.start()
    sender.close()
    try:
        message_model = train_message_model(messages, dev_messages, extra, args.extra)
        try:
            outcome, result = receiver.recv()
        except EOFError:
            raise RuntimeError(
                "the process training the reply and context classifiers ended without a result"
            ) from None
        if outcome == "error":
            raise result
        reply_model, context_model = result
    finally:  # an error here must not wait for the worker's minutes of training
        worker.terminate()
        worker.join()
    return {"messages": message_model, "replies": reply_model, "context": context_model}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=corpus.SAFETY_DATA, help="the safety corpus (data/safety)")
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="your own label<TAB>text TSV files")
    parser.add_argument("--output", type=Path, default=MODEL_DIR, help="where the three .safetensors files go")
    args = parser.parse_args(argv)
    try:
        models = train_models(args)
    except (CorpusError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        path = args.output / f"{name}.safetensors"
        temporary = path.with_name(f".{path.name}.tmp")
        model.save(temporary)
        temporary.replace(path)  # atomic: a running server never reads half a file
        thresholds = {n: h.threshold for n, h in model.heads.items()}
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, C={model.info['C']}, thresholds {thresholds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
