"""The code tables of the AIHub 감성 대화 말뭉치: the one place the project keeps them.

The 2022 JSON release stores codes (``"type": "E31"``, ``"situation": ["S06", "D02"]``,
``"human": ["A02", "G01"]``); the xlsx sheets and their CSV exports store the Korean labels. Readers,
training and evaluation all go through this module so the two spellings meet in one table.

Situation labels follow the corpus guideline as reproduced, identically, by several independent public
loaders of this corpus; note S12 is 대인관계(노년) and S13 is 재정.
"""

from __future__ import annotations

import unicodedata

MAJORS: tuple[str, ...] = ("분노", "슬픔", "불안", "상처", "당황", "기쁨")

# For plots and logs: matplotlib's default font has no Hangul glyphs.
MAJOR_ENGLISH: dict[str, str] = {
    "분노": "anger",
    "슬픔": "sadness",
    "불안": "anxiety",
    "상처": "hurt",
    "당황": "embarrassment",
    "기쁨": "joy",
}

# Fine labels by code; the tens digit is the major (1 = 분노 ... 6 = 기쁨) and x0 is the major itself.
_FINE_LABELS: dict[str, str] = {
    "E10": "분노",
    "E11": "툴툴대는",
    "E12": "좌절한",
    "E13": "짜증내는",
    "E14": "방어적인",
    "E15": "악의적인",
    "E16": "안달하는",
    "E17": "구역질 나는",
    "E18": "노여워하는",
    "E19": "성가신",
    "E20": "슬픔",
    "E21": "실망한",
    "E22": "비통한",
    "E23": "후회되는",
    "E24": "우울한",
    "E25": "마비된",
    "E26": "염세적인",
    "E27": "눈물이 나는",
    "E28": "낙담한",
    "E29": "환멸을 느끼는",
    "E30": "불안",
    "E31": "두려운",
    "E32": "스트레스 받는",
    "E33": "취약한",
    "E34": "혼란스러운",
    "E35": "당혹스러운",
    "E36": "회의적인",
    "E37": "걱정스러운",
    "E38": "조심스러운",
    "E39": "초조한",
    "E40": "상처",
    "E41": "질투하는",
    "E42": "배신당한",
    "E43": "고립된",
    "E44": "충격 받은",
    "E45": "가난한, 불우한",
    "E46": "희생된",
    "E47": "억울한",
    "E48": "괴로워하는",
    "E49": "버려진",
    "E50": "당황",
    "E51": "고립된",
    "E52": "남의 시선을 의식하는",
    "E53": "외로운",
    "E54": "열등감",
    "E55": "죄책감의",
    "E56": "부끄러운",
    "E57": "혐오스러운",
    "E58": "한심한",
    "E59": "혼란스러운",
    "E60": "기쁨",
    "E61": "감사하는",
    "E62": "신뢰하는",
    "E63": "편안한",
    "E64": "만족스러운",
    "E65": "흥분",
    "E66": "느긋",
    "E67": "안도",
    "E68": "신이 난",
    "E69": "자신하는",
}

EMOTIONS: dict[str, tuple[str, str]] = {code: (MAJORS[int(code[1]) - 1], label) for code, label in _FINE_LABELS.items()}

AGES: dict[str, str] = {"A01": "청소년", "A02": "청년", "A03": "중년", "A04": "노년"}
GENDERS: dict[str, str] = {"G01": "남성", "G02": "여성"}
DISEASES: dict[str, str] = {"D01": "만성질환 유", "D02": "만성질환 무"}
SITUATIONS: dict[str, str] = {
    "S01": "가족관계",
    "S02": "학업 및 진로",
    "S03": "학교폭력/따돌림",
    "S04": "대인관계",
    "S05": "연애,결혼,출산",
    "S06": "진로,취업,직장",
    "S07": "대인관계(부부, 자녀)",
    "S08": "재정,은퇴,노후준비",
    "S09": "건강",
    "S10": "직장, 업무 스트레스",
    "S11": "건강,죽음",
    "S12": "대인관계(노년)",
    "S13": "재정",
}

# Spellings seen in copies of the emotion table that qualify the two ambiguous labels by their major.
_EMOTION_ALIASES: dict[str, str] = {"고립된(당황한)": "E51", "혼란스러운(당황한)": "E59"}

# Separators that the sheets spell inconsistently ('가난한, 불우한' / '가난한,불우한', '구역질나는').
_IGNORED_IN_LABELS = str.maketrans("", "", ",，、·_")


def label_key(label: str) -> str:
    """The form labels are compared in: NFC, without whitespace or list separators."""
    return "".join(unicodedata.normalize("NFC", label).translate(_IGNORED_IN_LABELS).split())


def _index(table: dict[str, str]) -> dict[str, str]:
    return {label_key(label): code for code, label in table.items()}


_MAJOR_INDEX: dict[str, str] = {label_key(major): f"E{i}0" for i, major in enumerate(MAJORS, start=1)}
_FINE_INDEX: dict[str, tuple[str, ...]] = {}
for _code, (_major, _label) in EMOTIONS.items():
    _FINE_INDEX[label_key(_label)] = (*_FINE_INDEX.get(label_key(_label), ()), _code)
for _alias, _code in _EMOTION_ALIASES.items():
    _FINE_INDEX[label_key(_alias)] = (_code,)
_AGE_INDEX = _index(AGES)
_GENDER_INDEX = _index(GENDERS)
_SITUATION_INDEX = _index(SITUATIONS)
_DISEASE_INDEX = _index(DISEASES)


def major_of(code: str | None) -> str | None:
    """The major class (분노 ... 기쁨) of an emotion code, or None for an unknown code."""
    entry = EMOTIONS.get(code.strip().upper()) if code else None
    return entry[0] if entry else None


def canonical_major(label: str | None) -> str | None:
    """'불안 ' -> '불안'; None when the label is not one of MAJORS."""
    code = _MAJOR_INDEX.get(label_key(label)) if label else None
    return EMOTIONS[code][0] if code else None


def emotion_code(major: str | None, minor: str | None) -> str | None:
    """The E-code for a (major, fine) label pair as the sheets write them, or None when unknown.

    The major decides between the two fine labels that exist under two majors (고립된: E43 under 상처,
    E51 under 당황; 혼란스러운: E34 under 불안, E59 under 당황). A missing fine label means the major
    itself (E10, E20, ...). A fine label that contradicts a known major gives None rather than a guess.
    """
    major_code = _MAJOR_INDEX.get(label_key(major)) if major else None
    minor_key = label_key(minor) if minor else ""
    if not minor_key:
        return major_code
    candidates = _FINE_INDEX.get(minor_key, ())
    if major_code is not None:
        return next((code for code in candidates if code[1] == major_code[1]), None)
    return candidates[0] if len(candidates) == 1 else None


def _lookup(index: dict[str, str], label: str | None) -> str | None:
    return index.get(label_key(label)) if label else None


def age_code(label: str | None) -> str | None:
    """'청년' -> 'A02'; tolerant of spacing, None when unknown."""
    return _lookup(_AGE_INDEX, label)


def gender_code(label: str | None) -> str | None:
    """'여성' -> 'G02'; None when unknown."""
    return _lookup(_GENDER_INDEX, label)


def situation_code(label: str | None) -> str | None:
    """'진로, 취업, 직장' -> 'S06'; tolerant of spacing and commas, None when unknown."""
    return _lookup(_SITUATION_INDEX, label)


def disease_code(label: str | None) -> str | None:
    """'만성질환 유' -> 'D01'; None when unknown."""
    return _lookup(_DISEASE_INDEX, label)
