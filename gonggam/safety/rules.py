"""Stage 2: the precise, auditable rules, over the normalised text (see normalise.py).

Exceptions run first and mask what they match, so that a scope decision (news, fiction, a third party, the past,
barbecue charcoal, ...) keeps the crisis rules from firing on it; the crisis and concern rules then run on what is
left. Every pattern is written in normalised form. The trained classifier (classifier.py) covers what these rules
do not name; combine.py decides how the two verdicts meet.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from gonggam.safety.normalise import Normalised, normalise_view
from gonggam.safety.replies import Level


@dataclass(frozen=True)
class _Rule:
    name: str
    level: Level
    patterns: tuple[re.Pattern[str], ...]  # separate patterns so that each may name its own group "m"


@dataclass(frozen=True)
class Hit:
    name: str
    level: Level
    start: int
    end: int


def _rule(name: str, level: Level, *alternatives: str) -> _Rule:
    return _Rule(name, level, tuple(re.compile(a) for a in alternatives))


def _alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


_WANT = "(?:싶|십|시퍼|시프|시픈|시펐|파)"  # 싶다 and its usual misspellings / 고파
_FIRST_PERSON = _alt("나는", "내가", "나도", "나를", "나한테", "나만", "저는", "제가", "저도", "저를", "저한테")


def _gap(n: int) -> str:
    """Up to n syllables that are not a first-person subject (which would make the phrase the user's)."""
    return f"(?:(?!{_FIRST_PERSON})[가-힣]){{0,{n}}}?"


_THIRD_PARTY = _alt(
    "친구들",
    "친구",
    "엄마",
    "어머니",
    "어머님",
    "아빠",
    "아버지",
    "아버님",
    "부모님",
    "남동생",
    "여동생",
    "동생",
    "언니",
    "오빠",
    "누나",
    "형님",
    "형",
    "남편",
    "아내",
    "와이프",
    "남자친구",
    "여자친구",
    "남친",
    "여친",
    "애인",
    "동료",
    "선배",
    "후배",
    "아들",
    "딸",
    "아이",
    "애",
    "조카",
    "사촌",
    "삼촌",
    "이모",
    "고모",
    "할머니",
    "할아버지",
    "룸메이트",
    "룸메",
    "지인",
    "걔",
    "쟤",
    "그애",
    "그사람",
    "그분",
    "학생",
    "제자",
    "직원",
    "팀원",
    "상사",
    "손님",
    "환자",
    "내담자",
    "강아지",
    "고양이",
    "반려견",
    "반려묘",
)
_SUBJECT_PARTICLE = _alt("께서는", "께서", "께선", "가", "이", "는", "은", "도")
_ADVERBS = (
    _alt(
        "요즘",
        "요새",
        "자꾸",
        "계속",
        "또",
        "다시",
        "몰래",
        "가끔",
        "자주",
        "예전에",
        "전에",
        "어제",
        "오늘",
        "최근에",
        "최근",
        "갑자기",
        "결국",
        "진짜",
        "정말",
        "매일",
        "혼자",
        "몇번",
        "여러번",
        "한번",
        "얼마전에",
        "작년에",
        "지난주에",
        "이번에",
        "방에서",
        "집에서",
        "학교에서",
        "편하게",
        "고통없이",
        "조용히",
    )
    + "*"
)
# The start of every crisis phrase: masking it is enough to keep the crisis rules from firing.
_CRISIS_CORE = _alt(
    "자해",
    "자살",
    "극단적인?선택",
    "투신",
    "뛰어내",
    "손목",
    "목숨을?끊",
    "유서",
    "죽으려",
    rf"죽고{_WANT}",
    "사라지고싶",
    "살기싫",
    "살고싶지않",
    "약을?(?:잔뜩|왕창|한꺼번에|한번에)",
    "수면제",
    "번개탄",
    "목을?매",
    "과다복용",
    "죽을생각",
    "죽기로",
    "죽는게나",
    "죽었으면",
)
# Wishes that a report about someone else ends in: 죽고 싶다고 했어, 죽고 싶대, 죽고 싶어 해.
_DESIRE = _alt(
    rf"죽고{_WANT}",
    "자살하고싶",
    "사라지고싶",
    "살기싫",
    "살고싶지않",
    "자해하고싶",
    "없어지고싶",
    "뛰어내리고싶",
    "끝내고싶",
)
_REPORTED = _alt(
    "다고",
    "대요",
    "대",
    "어해",
    "어하",
    "어한",
    "다더",
    "다며",
    "다는",
    "단",
    "다네",
    "다구",
    "었대",
    "었다고",
    "었다는",
    "다그랬",
)
_DEATH_WISH = _alt(rf"죽고{_WANT}", "자살하고싶", "사라지고싶", "자해하고싶", "뛰어내리고싶", "없어지고싶")
_LIVING = _alt("살기(?:가|도|는)?싫", "살고싶지(?:가|도|는)?않", "사는게싫", "살수(?:가)?없", "살자신(?:이|도)?없")
_MEDS = _alt(
    "(?<![예계절공요규협조특제언서치])약",
    "알약",
    "수면제",
    "수면유도제",
    "신경안정제",
    "안정제",
    "진통제",
    "타이레놀",
    "해열제",
    "우울증약",
    "항우울제",
    "정신과약",
    "감기약",
    "두통약",
)
_POISONS = _alt("농약", "제초제", "그라목손", "청산가리", "독약", "독극물", "쥐약", "부동액", "락스", "살충제")
_BULK = _alt("잔뜩", "왕창", "한꺼번에", "한번에", "통째로", "몽땅", "한주먹", "한움큼", "한통", "한봉지")
_COOKING = _alt("고기", "굽", "구워", "구웠", "캠핑", "바베큐", "바비큐", "숯불", "그릴", "불붙", "화로")

# Every pattern is written in normalised form: no spaces and no doubled letters (영영 → 영, kill → kil).
# Exceptions run first, in order; each masks (part of) its match so that no later rule fires on it.
# The named group "m" is what gets masked; without it the whole match is.
_EXCEPTIONS: tuple[_Rule, ...] = (
    _rule(
        "topic_mention",
        "none",
        r"(?P<m>자살|자해|극단적인?선택|투신|과다복용)(?:시도)?(?=율|률|자수|자들|시도자|통계|예방|방지|뉴스|기사"
        r"|캠페인|관련|사건|사고|보도|다큐|문제|유가족|유족|생존자|위험군|위험성|교육|상담|연구|대책|센터|신고"
        r"|에관한|에대한|을다룬|를다룬|을주제|를주제|영상|콘텐츠|라는|이라는|란|이란|라고|이라고)",
        r"(?P<m>유서)(?=쓰기|작성체험|체험|쓰는수업)",
        r"(?P<m>죽고싶지만떡볶이)",  # a well-known essay title
    ),
    _rule(
        "news_mention",
        "none",
        rf"(?:뉴스|기사|보도|신문|연예인|배우|가수|아이돌|유명인|정치인|선수|유튜버){_gap(10)}"
        r"(?P<m>극단적인?선택|자살|투신|목숨을?끊|생을마감)",
    ),
    _rule(
        "fiction_mention",
        "none",
        rf"(?:주인공|등장인물|인물|캐릭터|악역|악당|여주|남주){_SUBJECT_PARTICLE}?{_ADVERBS}(?P<m>{_CRISIS_CORE})",
    ),
    _rule(
        "barbecue_charcoal",
        "none",
        rf"(?P<m>번개탄)(?=[가-힣]{{0,12}}?{_COOKING})(?![가-힣]{{0,16}}(?:척|핑계))",
        rf"{_COOKING}[가-힣]{{0,12}}?(?P<m>번개탄)(?![가-힣]{{0,10}}(?:척|핑계))",
    ),
    _rule(
        "post_deletion",
        "none",
        r"(?:글|게시물|게시글|댓글|포스트|사진|계정|영상|트윗|피드|스토리|프사)(?:을|를|은|는|도|다|좀|그냥|빨리"
        r"|바로|싹|전부)*(?P<m>자삭)",
    ),
    # A threat or a tease addressed to someone else (너 죽을래?, 니 진짜 죽는다): the speaker is not the one at risk.
    # Only 너/니/넌 right before the verb (one adverb between at most): 너없으면죽을래 is not this.
    _rule(
        "threat_to_someone",
        "none",
        r"(?<![가-힣])(?:너|니|넌|느그|너네)(?:진짜|진심|정말|오늘|또|이번엔|한번만더)?"
        r"(?P<m>죽을래|죽는다|죽었다|죽었어|뒤질래|뒤진다|맞아죽)",
    ),
    _rule("obsession_idiom", "none", r"(?<!나무)(?<!문고리)(?<!천장)(?:에게|한테|에|께)(?P<m>목을?매)(?!달)"),
    _rule("rummaging", "none", r"(?:을|를|서랍|가방|폰|쓰레기통|냉장고)(?P<m>뒤지)(?=고)"),
    _rule(
        "living_arrangement",
        "none",
        r"(?:혼자|같이|함께|둘이|랑|하고|집|동네|나라|도시|시골|서울|한국|여기|거기|기숙사|자취방|원룸)"
        rf"(?:에서|에|서|는|도|만)?(?:더는|더이상)?(?P<m>{_LIVING})",
    ),
    _rule(
        "ending_a_task",
        "none",
        r"(?:과제|숙제|할일|일을|업무|공부|프로젝트|청소|설거지|빨래|시험|보고서|작업|정리|게임|드라마|이사|준비"
        r"|계약|연애|관계|알바|수업|회의|논문|회사일|집안일|오늘일|방학|휴가|다이어트|여행|대화|싸움|이야기|얘기"
        rf"|통화|우리){_gap(6)}(?P<m>다?(?:끝내|끝장내|끝낼|마감))",
    ),
    _rule(
        "anger_at_someone",
        "none",
        f"(?:{_THIRD_PARTY}|그새끼|새끼|그놈|그년|그인간|팀장|부장|사장|과장|담임|전남친|전여친|시어머니|걔네|쟤네)"
        f"{_SUBJECT_PARTICLE}?{_gap(8)}(?P<m>죽었으면|죽어버렸으면|뒤졌으면|죽어야)",
    ),
    _rule(
        "third_party_report",
        "concern",
        f"{_THIRD_PARTY}{_SUBJECT_PARTICLE}{_gap(14)}(?P<m>{_DESIRE}{_REPORTED})",
        f"{_THIRD_PARTY}{_SUBJECT_PARTICLE}{_ADVERBS}(?P<m>{_CRISIS_CORE})",
    ),
    _rule(
        "about_other_people",
        "concern",
        r"(?<!처럼)(?<!같이)(?P<m>자살|자해|죽고싶|극단적인?선택|죽으려)[가-힣]{0,6}?(?:사람들|분들|청소년|학생들"
        r"|환자|친구를|친구에게|친구한테|사람을|사람에게|사람한테|사람이많)",
    ),
    _rule(
        "negated_wish",
        "concern",
        rf"(?P<m>{_DEATH_WISH}(?:진|지는|지도|지가|지까지는|지까진|지)않)(?![가-힣]{{0,8}}거짓)",
        rf"(?P<m>(?:{_DEATH_WISH}|살기싫|살고싶지않)(?:은|다는|었던|던)(?:건|게|거|것은|거는|생각은|마음은"
        r"|정도는|정도까진)?(?:아니|아닌|아냐))",
        rf"(?P<m>{_DEATH_WISH}다는(?:생각|마음)(?:은|까지는|까진|을|이|도)?(?:안(?!하려|할수)|한적없|해본적없"
        r"|해본적은없|들지않|하지않|없(?!어지|어질|애)))",
        r"(?P<m>(?:죽을|죽는|자살할)생각(?:은|까지는|까진|도)?(?:없(?!어지)|안(?!하려|할수)))",
        r"안(?P<m>죽고싶)",
        r"(?:dont|donot|didnt|never|not)(?P<m>wan+t+odie|wan+adie|kil+myself)",
    ),
    _rule(
        "past_wish_resolved",
        "concern",
        rf"(?P<m>{_DEATH_WISH}(?:었던적(?:이|도)?있(?:었|는)?(?:지만|는데|었는데|어도)?|었는데|었지만"
        r"|을때도있었(?:지만|는데)))(?=[가-힣]{0,10}?(?:지금은|이제는|이젠|요즘은|지금)(?:괜찮|아니|안그|나아"
        r"|좋아|살만|행복|극복))",
    ),
    _rule(
        "living_like_this",
        "concern",
        r"(?:이렇게|이런식으로|이대로|그렇게|저렇게|이런삶|이런인생|이따위로|이렇게까지)(?:을|은|는|로|으로)?"
        rf"(?:더는|더이상|계속)?(?P<m>{_LIVING})",
    ),
)

_CRISIS_RULES: tuple[_Rule, ...] = (
    _rule(
        "death_wish",
        "crisis",
        rf"(?:죽|쥭)(?:고|구|꼬)만?{_WANT}|죽고퍼|주꼬(?:싶|십|시퍼|파)",
        rf"(?:뒤지|뒈지|디지|뒤져버리|디져버리|죽어버리|주거버리|뒈져버리)고만?{_WANT}|주거버릴",
        r"ㅈㄱㅅ|ㅈㄱ싶|ㅈㄱ십",
    ),
    _rule(
        "death_intent",
        "crisis",
        r"(?<!너)(?:그냥|차라리|확|콱|이제|오늘|내일|조만간|곧|나|난|저|전|어떻게|언제|같이|빨리|진짜|정말)"
        r"(?:죽을|죽어버릴|뒤질|디질|뒈질)(?:래|까(?!봐|바|걱정|무서|두려|겁)|거(?!같)|꺼(?!같)|게|란다)",
        r"(?:나|난|나같은건|나같은거|내가|저|제가|저같은건|그냥|차라리|이제|빨리)죽어야(?:겠|지|돼|해|할|하나|될"
        r"|한다|하는데|만)",
        r"죽어야겠|죽어버리겠|죽고말겠|죽고말거|죽어버려야|죽어버릴(?:까|래|거|꺼|게|생각)",
        r"죽기로(?:결심|했|마음|작정|정했)",
        r"죽을(?:결심|작정|용기|준비|생각|궁리|방법|계획|장소|날짜|수밖에)",
        r"죽는(?:방법|법|생각|상(?!황|태)|게나|게낫|게편|게답|편이|수밖에|것밖에|게맞)",
        r"죽으려고?(?:마음|결심|작정|했|시도|계획|생각)",
        r"죽었으면(?:좋겠|해|한다|싶|하는)|죽어버렸으면|죽어서(?:사라지|없어지|편해지)|죽어없어지",
        r"(?:날|나를|저를|절)(?:좀|그냥)?죽여(?:줘|주|줬으면|달라)",
        r"^(?:죽을래|죽을까(?!봐|바)|죽어야(?:겠|지|돼|해))",  # a message that opens with it is about the writer
        r"죽음(?:만이|밖에|뿐)(?:이)?(?:해결|답|방법|길|출구)|죽는(?:것만이|것밖에|게유일한)",
    ),
    _rule(
        "suicide_intent",
        "crisis",
        rf"(?:자살|ㅈㅅ|자쌀|자샬|쟈살|jasal|suicide)(?:을|를)?(?:하고만?{_WANT}|하구싶|할래|할까|할거|할꺼|하려|할려|해야겠"
        r"|해야지|해야할|해버릴|해버리고|하고말|할생각|할계획|할결심|할용기|할방법|하는방법|하는법|하면|할수있"
        r"|해볼까|해도될|하기로|할지|각|마렵|충동|계획|시도|결심|방법|미수|기도|생각(?:이|을|만|도|밖에|뿐)?(?:들"
        r"|나|해|했|하|자주|계속|많이|뿐|밖에|만|이))",
        rf"극단적인?(?:선택|생각|방법)(?:을|이|만|밖에|도|까지)?(?:하고{_WANT}|할래|할까|할거|할꺼|하려|할려|해야"
        r"|할생각|할수밖에|밖에|생각|들|나|해(?!서는안)|했(?!대|다는|다고|답|다더|다네|단)|하게|자꾸|계속|하면|할뻔"
        r"|하기로|까지|각)",
    ),
    # 자삭 is also 자진 삭제 (deleting one's own post): the same words after a post, so the conversation's topic can
    # explain it (context.AMBIGUOUS_RULES) where the message alone cannot.
    _rule("self_deletion", "crisis", rf"자삭(?:하고{_WANT}|할래|할까|할거|하려|해야겠|각|마렵|충동|생각)"),
    _rule(
        "jumping",
        "crisis",
        rf"뛰어내리(?:고만?{_WANT}|려|면|기로|고말)|뛰어내려(?:야|버릴)|뛰어내릴(?:까|래|거|꺼|생각|용기|결심|곳|데|수)",
        rf"투신(?:하고{_WANT}|할래|할까|하려|할거|할생각|하면|각|하기로|해버릴)",
        r"(?:옥상|다리|건물|아파트|창문|베란다|높은곳|높은데|절벽|빌딩|한강|대교)(?:에서|위에서|밖으로|로|으로|에"
        rf"|위|위로)?(?:떨어지고{_WANT}|떨어질까|떨어지면|떨어져버릴|몸을던지|몸을던질|몸던지|뛰어들)",
        rf"(?:옥상|건물|아파트|창문|베란다|높은곳|높은데|절벽|빌딩|난간)[가-힣]{{0,8}}?떨어지고{_WANT}",
        rf"한강(?:물|수)?(?:온도|수온|차갑|차가울|뛰어|들어가고{_WANT})",
        r"난간(?:위|에서있|밖|에올라|을넘|넘어)",
    ),
    _rule(
        "hanging",
        "crisis",
        rf"목을?(?:매(?:고{_WANT}|달|려|면|어야|야겠|고죽|는방법|았|고말|기로)|맬(?:까|래|거|꺼|생각|곳)|맸)",
        r"목매달|목졸라(?:죽|자살)",
        r"밧줄(?:을|를)?(?:사놨|사놓|사뒀|사두|준비해|준비했|구해놨|구했|샀)",
    ),
    _rule(
        "self_harm",
        "crisis",
        r"자해",
        r"손목(?:을|에|도)?[가-힣]{0,3}?(?:긋|그었|그어|그을|그이|자르|잘랐|베|벴|칼|커터|면도)",
        r"(?:팔|허벅지|손목|팔목|몸)(?:을|에|에다|에다가)?(?:칼로|커터칼로|커터로|면도칼로|면도날로|칼날로)",
        r"(?:칼로|커터칼로|커터로|면도칼로|면도날로|칼날로)(?:팔|손목|허벅지|팔목|몸을|나를)",
        r"(?:나를|날|내몸을|내몸|나자신을|스로를|제몸을|저를|저자신을|내자신을)(?:좀|막|자꾸)?(?:해치|다치게하"
        rf"|상처내|아프게하|때리|벌주|망가뜨리|괴롭히)고{_WANT}",
        rf"(?:또|다시|몰래|손목|팔|살)(?:을|를)?긋고{_WANT}",
        r"(?:허벅지|팔|손목|팔목|몸|다리|배|살)(?:에|에다|을|를)?상처(?:를)?(?:내|냈|낸)",
        rf"피를?보고{_WANT}",
    ),
    _rule(
        "pills_or_poison",
        "crisis",
        rf"{_MEDS}(?:을|를|들을|들|이랑)?{_BULK}+(?:모아|모았|모으|사모|먹|삼키|삼켜|털어|입에|쟁여)",
        rf"{_MEDS}(?:을|를|들을|들)?(?:많이|다|전부|몰래|조금씩|계속|하나둘씩|매일)?(?:모아|모았|모으|사모|쟁여"
        r"|털어넣)",
        rf"(?<![a-z])(?:od|오디)(?:하고{_WANT}|할래|할까|하려|해야겠|했었|했어|각)",
        rf"과다복용(?:하고{_WANT}|할래|할까|하려|할거|해야겠|했|하면|각|해버릴)|오버도즈|치사량",
        rf"{_POISONS}(?:을|를|이라도|라도|한병|한컵|한통)?(?:마시|마실|마셔|먹|삼키|삼킬|들이키|들이켜|음독|사"
        r"|구하|구했|구해|모아)",
    ),
    _rule(
        "charcoal_or_gas",
        "crisis",
        r"번개탄",
        rf"(?:연탄|숯)(?:을|불|불을)?(?:피우|피워|피울|태우|태워)(?:고{_WANT}|고죽|서죽|려|볼까|야겠|기로"
        r"|놓고잠|놓고자|놓고죽)",
        r"일산화탄소(?:중독)?(?:으로|로)?(?:죽|자살|하고싶|할까)",
    ),
    _rule(
        "sleep_forever",
        "crisis",
        rf"영원히(?:잠들|잠자|눈감|눈을감|쉬고{_WANT}|자고{_WANT}|자버리|잠들어버리|깨지않|안깨|사라지)",
        rf"(?:깨어나지|깨지|눈을?뜨지)(?:않았으면|말았으면|않으면좋|못했으면|않고{_WANT}|말고{_WANT}|않기를|않게)",
        r"(?:다시는|영|그냥|이대로|아침에|내일|내일아침|자고나서)(?:눈을?)?안(?:떴으면|깼으면|깨어났으면"
        r"|깨났으면)",
        r"내일(?:이|은|아침이|따윈|따위)?(?:없었으면|안왔으면|오지않았으면|오지말았으면|안오면좋|없으면좋|영안왔"
        r"|오지않기를)",
        r"아침이(?:안왔으면|오지않았으면|오지말았으면|영안|오지않기를)",
        r"자다가(?:그냥|조용히)?(?:죽었으면|죽고싶|안깼으면|깨지않|숨이멎|심장이멈|죽으면좋)",
        r"눈을감고(?:다시는|영원히|영안)",
        rf"(?:안|영원히|다시는)깨(?:어나|나)?고{_WANT}|깨어나고싶지(?:가|도)?않",
    ),
    _rule(
        "disappearing",
        "crisis",
        rf"(?:사라지|없어지|소멸하|사라져버리|없어져버리|소멸해버리)고만?{_WANT}",
        r"(?:이세상|세상)(?:에서|에|에서도)?(?:없어지|사라지|없었으면|없는게나|없는게낫|지워지고)",
        rf"(?:세상|이세상|세상과|삶과)(?:을|를|과|에|와)?(?:떠나|등지|하직|작별하)(?:고{_WANT}|려|고말|기로|야겠)",
        r"(?:세상|이세상)(?:을|를)?떠날(?:까|래|거|꺼|게|생각|결심)",
        rf"하늘나라(?:에|로)?(?:가고{_WANT}|갈래|갈까|가야겠|가려|가버릴)",
        rf"(?:흔적도없이|조용히|영|영원히)(?:떠나|사라져|사라지|없어지)(?:고{_WANT}|려|ㄹ래|버리고싶"
        r"|버릴까)|(?:흔적도없이|조용히|영|영원히)(?:떠날|사라질|없어질)(?:까|래|거|생각)",
    ),
    _rule(
        "ending_it",
        "crisis",
        r"(?:그냥|이제|정말|진짜|차라리|그만|모든걸|모든것을|모든것|전부|나|난|저|전|다|삶을|인생을|생을|목숨을"
        rf"|내삶을|내인생을|이번생을|이생을|이고통을|고통을)다?(?:끝내(?:고{_WANT}|버리고싶|려|야겠|버릴|고말"
        rf"|기로|볼까|버릴까)|끝낼(?:거|꺼|래|까|생각|게|결심)|끝장내(?:고{_WANT}|버릴|려|야겠))",
        rf"(?:삶|생|인생|목숨|이번생|이생|내인생|내삶)(?:을|를)?(?:마감하|마감|포기하)(?:고{_WANT}|려|야겠|기로|ㄹ까|ㄹ래)",
        rf"목숨(?:을)?(?:끊(?:고{_WANT}|으려|을까|을래|을거|을생각|어버릴|기로|으면)|버리고{_WANT})",
        r"스로목숨|생을마감(?:하고|할|하려|하기로)",
        r"유서(?:를|도)?(?:썼|써|쓰고|쓰는|쓸|작성|남기|남겨|남길|준비|다썼)",
    ),
    _rule(
        "burden_on_others",
        "crisis",
        r"(?:나|난|내가|나같은건|나같은거|나같은애|나하나|나정도|저|제가|저같은건|저하나|나따위|나란존재|내존재"
        r"|저따위)(?:는|가|쯤|쯤은|정도는|따위는|하나쯤|하나)?(?:죽어도|없어져도|사라져도|없어도|죽든|없어지든"
        r"|사라지든|죽는다고|죽는다해도|죽어버려도|죽으면|없어지면|사라지면)[가-힣]{0,6}?(?:아무도|누구도|아무렇지|아무상관|모를|모르|티도"
        r"|슬퍼하지|슬퍼할사람|신경안|신경도안|눈치채지|관심없|관심도없|달라지는게없|바뀌는게없|세상은잘)",
        r"(?:내가|나만|제가|저만|나같은게|나같은건|나하나|나|저)만?(?:없으면|없어지면|사라지면|죽으면|없어져야)"
        r"[가-힣]{0,8}?(?:행복|편하|편해|편할|나을|낫|잘살|좋아할|좋을|홀가분|해결|되는데)",
        r"(?:내가|제가|나)없는게(?:나을|낫|모두|다들|가족|좋|편)",
    ),
    _rule(
        "living_refusal",
        "crisis",
        r"살기(?:가|도|조차|는)?(?:싫|실어|시러)",
        r"살고(?:싶|십)(?:지|진|지는|지도|지가)(?:가|도|는)?않",
        r"살고(?:싶|십)은(?:마음|생각|이유)(?:이|도|은)?(?:없|전혀없|하나도없|안)",
        r"살아있(?:고싶지않|기싫|기가싫|기조차싫|고싶지가않)",
        r"살아있는게(?:너무|정말|진짜|이제|다)?(?:싫|고통|괴로|지옥)",
        r"살자신(?:이|도)?없",
        rf"(?:이번생|이생|인생|삶)(?:은|을|는)?(?:그만하|끝내|마감하)고{_WANT}",
        r"(?:더는|더이상|그만)살(?:기싫|고싶지않|수가없|수없|자신이없|이유가없)",
        rf"그만살(?:고{_WANT}|래|까|아야)",
        r"사는게(?:너무|정말|진짜)?싫",
        r"(?:이세상에|세상에|삶에|인생에|이승에)(?:더는|더이상|이제)?미련(?:이|도|따위)?(?:없|하나도없|전혀없)",
        r"(?:살|살아갈|살아야할|살아있어야할|계속살|살아갈만한)이유(?:가|를|도)?(?:없|모르|못찾|하나도없|전혀없"
        r"|안보)",
    ),
    _rule(
        "method_seeking",
        "crisis",
        r"(?:몇층|몇미터|층이상|얼마나높|몇알|몇개|몇정|얼마나많이|몇밀리|몇그램|어느정도)[가-힣]{0,12}?(?:죽|사망"
        r"|확실히죽|깨어나지않|안깨어|못깨어)",
        r"어떻게(?:하면)?(?:죽(?:어야|으면|을수|을까)|자살)",
        r"(?:고통없이|고통없게|안아프게|안아프고|편하게|편안하게|깔끔하게|한번에|확실하게|확실히)(?:죽(?:는|을|고"
        r"|으려|을까|을수|어|기|게)|자살|목숨을끊|세상을떠나)",
        r"죽는약|죽을수있는약|죽게해주는|죽을수있는곳|죽기좋은",
    ),
    _rule(
        "english_intent",
        "crisis",
        # doubled letters collapse inside a word but not across words (want to → wantto): hence the +
        r"(?<![a-z])kms",
        r"kil+myself|wan+t+odie|wan+adie|endmylife|endingmylife|suicidal|takemyownlife|takemylife|endit+al+",
        r"(?:com+it|com+it+ing|thinkingabout|thoughtsof|at+empted|at+empt)suicide",
    ),
)

_CONCERN_RULES: tuple[_Rule, ...] = (
    _rule(
        "hopelessness",
        "concern",
        r"(?:사는게|사는것이|사는것도|삶이|삶에|인생이|인생에|살아가는게|살아있는게|산다는게|산다는것이|하루하루가"
        r"|매일이)(?:너무|정말|진짜|다|아무|이제|더이상)?(?:의미가없|의미없|의미도없|아무의미|무의미|허무|지옥"
        r"|고통|지겹|지겨|지긋|버거|버겁|괴롭|재미없|덧없|부질없)",
        r"희망(?:이|도|따위|은|이라곤)?(?:없|하나도없|안보|사라졌|잃었|보이지않|안생)",
        r"절망(?:적|스러|뿐|밖에|감)",
        r"미래(?:가|도|는)?(?:없|안보|보이지않|캄|깜)",
        r"앞이(?:안보|캄|깜)|출구가없|탈출구가없|벗어날수가?없|끝이안보",
        r"살아서뭐|살아봤자|살면뭐해|사는이유를모르|왜살아야|왜사는지모르|살아야하는이유를모르"
        r"|살(?:아갈)?의미(?:가|를)?(?:없|모르)",
    ),
    _rule(
        "giving_up",
        "concern",
        rf"(?:다|모든걸|모든것을|모든것|전부|인생을|삶을|나를|나자신을|모두)포기(?:하고{_WANT}|할래|할까|해버리고싶|했어|하게돼|해버릴)",
        rf"다(?:내려)?놓고{_WANT}|다그만하고{_WANT}|이제그만하고{_WANT}|모든걸그만",
        r"(?:못버티|버틸수가?없|버틸힘이없|견딜수가?없|못견디)",
    ),
    _rule(
        "worthlessness",
        "concern",
        r"태어나지(?:말|않았으면|않았어야)|태어난게(?:잘못|후회|죄)",
        r"존재(?:자체가|가)?(?:민폐|짐|쓸모없|무의미)|짐(?:만|이|밖에)?(?:되|돼|된)|민폐만",
        r"(?:살아있어서|태어나서|존재해서)(?:너무)?미안",
        r"쓸모없는(?:존재|인간|사람)|아무도(?:나를|날)?(?:필요로하지|필요없|원하지않|사랑하지않)",
    ),
    _rule(
        "dark_thoughts",
        "concern",
        r"나쁜생각|이상한생각이?(?:자꾸|계속|들)",
        r"죽음(?:에대해|에관해|을|이라는걸|이란|만)?(?:자주|계속|많이|매일|자꾸|요즘)?(?:생각|떠올|고민|상(?!황|태))",
        rf"증발하고{_WANT}|숨쉬(?:기도|는것도|는것조차)(?:싫|버거)",
        r"(?:자살|자해|극단적인?선택)(?:할까봐|하면어떡|할것같아|할까걱정)",
    ),
    _rule("suicide_loss", "concern", r"자살(?:했|한|로|해서|을했)"),
    _rule(
        "own_death_imagined",
        "concern",
        r"(?:나|내가|제가)죽으면[가-힣]{0,6}?(?:장례식|누가|슬퍼|울)|내장례식|죽을때가(?:된|됐|온)",
    ),
    _rule("putting_affairs_in_order", "concern", r"신변정리|주변정리|유품정리를미리"),
    _rule("farewell", "concern", rf"마지막(?:편지|인사)(?:를|도)?(?:썼|써|쓰고|남기|남겼|했|하고{_WANT})"),
)
# Hopelessness plus a decision or a plan (다 준비했어, 오늘 끝내려고) is no longer only hopelessness.
_CONCERN_ESCALATES = frozenset(rule.name for rule in _CONCERN_RULES) | {"living_like_this"}
_INTENT = re.compile(
    r"끝내려|끝낼(?:거|꺼|래|게)|끝내야겠|실행할(?:거|꺼|게|래)|실행하려|다준비했|준비다했|준비끝났|마음의준비"
    r"|오늘이마지막"
)

# After a report about someone else, 나도 (같이) 하고 싶어 is the user's own wish.
_ME_TOO = re.compile(rf"나도(?:같이|따라)?(?:하고{_WANT}|해볼까|할까|그러고{_WANT}|그럴까|해버릴까)")

_OUTPUT_RULES: tuple[_Rule, ...] = (
    _rule(
        "output_charcoal_or_gas",
        "crisis",
        r"번개탄|(?:연탄|숯)(?:을|불|불을)?(?:피우|피워|피운|태우|태워)|일산화탄소",
        r"(?:문틈|창문틈|틈새|틈)(?:을|를)?[가-힣]{0,4}?(?:막|봉)|밀폐(?:된|한)?(?:방|공간|차|곳)",
    ),
    _rule(
        "output_pills_or_poison",
        "crisis",
        r"치사량|과다복용|오버도즈",
        rf"{_MEDS}(?:을|를|들을)?(?:모아서|모아)?(?:{_BULK}|많이|대량으로|여러알)+(?:먹|삼키|삼켜|드시|복용|털어"
        r"|모아|모으)",
        rf"{_MEDS}(?:을|를|들을)?(?:모아서|모아두|모아뒀|모아놓|모아놨|모아다)",
        rf"{_POISONS}(?:을|를)?(?:마시|마셔|먹|삼키|드시|음독)",
        r"(?:알|정|밀리그램|그램)(?:이상|정도|이면|만)(?:먹|삼키|드시|복용)",
    ),
    _rule(
        "output_jumping",
        "crisis",
        r"뛰어내리|뛰어내려|몸을던지|몸을던져|투신",
        r"(?:옥상|고층|높은곳|높은데|몇층|층이상|절벽)(?:에서|위에서)?[가-힣]{0,4}?떨어지(?:면|세요|시면)",
    ),
    _rule(
        "output_hanging",
        "crisis",
        r"(?<!에)(?<!게)(?<!테)목을(?:매|맬|맸)|목매달|목을?매는방법|목을?졸라",
        r"(?:문고리|천장|옷걸이|샤워기|고리)(?:에|에다|에다가)[가-힣]{0,4}?(?:끈|줄|밧줄|스카프|넥타이|벨트)?"
        r"(?:을|를)?(?:묶|걸|매)",
        r"(?:끈|줄|밧줄|넥타이|스카프|벨트|전선)(?:을|를|으로|로)[가-힣]{0,4}?목",
    ),
    _rule(
        "output_cutting",
        "crisis",
        r"(?:손목|동맥|정맥|혈관|팔목|허벅지)(?:을|를|에|의)?[가-힣]{0,4}?(?:긋|그으|그어|자르|베|깊게|세로"
        r"|가로)",
        r"(?:칼|면도날|면도칼|커터칼|커터|칼날|가위)(?:로|으로)[가-힣]{0,4}?(?:손목|팔|동맥|허벅지|긋|그으|그어"
        r"|피부)",
    ),
    _rule(
        "output_method_talk",
        "crisis",
        r"(?:자살|자해)(?:하는|할)?(?:방법|수단|도구|장소)|(?:죽는|죽을수있는|목숨을끊는|생을마감하는)(?:방법|법"
        r"|수단|도구|장소)|극단적인?선택(?:을|하는)?(?:방법|수단)",
        r"(?:고통없이|고통없게|안아프게|편하게|편안하게|쉽게|깔끔하게|확실하게|한번에)(?:죽(?!음)|자살"
        r"|목숨을끊|생을마감)",
    ),
    _rule(
        "output_encouragement",
        "crisis",
        r"(?:죽는(?:게|것이|편이)(?:나아|낫|나을|좋|편할|답)|죽어도(?:괜찮|돼|된다|좋)|자살(?:해도|하는게|하는것도)"
        r"(?:괜찮|돼|나아|낫|방법)|죽는것도(?:방법|나쁘지|괜찮))(?![가-힣]{0,6}(?:생각|느끼|마음))",
        r"(?:자살|자해)(?:하세요|해보세요|하면돼|하면됩니다|하시면)|죽으세요|죽어버리세요|죽으면돼|죽으면됩니다",
    ),
)


def _spans(rule: _Rule, text: str, word_ends: frozenset[int]) -> Iterator[tuple[int, int]]:
    """Where the rule matches, skipping matches glued together from two words (의자 살 → 자살)."""
    for pattern in rule.patterns:
        masked = "m" in pattern.groupindex
        pos = 0
        while (match := pattern.search(text, pos)) is not None:
            start, end = match.span()
            if end - start > 1 and start in word_ends:
                pos = start + 1
                continue
            yield match.span("m") if masked else (start, end)
            pos = max(end, start + 1)


def _apply_exceptions(norm: Normalised) -> tuple[str, list[Hit]]:
    """Mask what the exceptions match; the text keeps its length so positions stay comparable."""
    text, hits = norm.text, []
    for rule in _EXCEPTIONS:
        # Exceptions may start anywhere: their context (엄마랑 살기 싫어) often ends a word.
        spans = list(_spans(rule, text, frozenset()))
        for start, end in spans:
            text = text[:start] + "_" * (end - start) + text[end:]
            hits.append(Hit(rule.name, rule.level, start, end))
    return text, hits


def message_hits(norm: Normalised) -> list[Hit]:
    masked, hits = _apply_exceptions(norm)
    for rule in _CRISIS_RULES + _CONCERN_RULES:
        hits.extend(Hit(rule.name, rule.level, s, e) for s, e in _spans(rule, masked, norm.word_ends))
    if any(h.name == "third_party_report" for h in hits) and (match := _ME_TOO.search(masked)):
        hits.append(Hit("me_too_after_report", "crisis", *match.span()))
    if any(h.name in _CONCERN_ESCALATES for h in hits) and (match := _INTENT.search(masked)):
        hits.append(Hit("despair_with_intent", "crisis", *match.span()))
    return hits


def output_hits(norm: Normalised) -> list[Hit]:
    """What the output rules find in a model reply: a means or method of suicide or self-harm."""
    return [
        Hit(rule.name, rule.level, s, e) for rule in _OUTPUT_RULES for s, e in _spans(rule, norm.text, norm.word_ends)
    ]


# A refusal of method talk is the safe reply itself (자살 방법은 알려 드릴 수 없어요; 어디서 뛰어내리면 되는지는 알려
# 드릴 수 없어요): an output rule's match in a sentence that refuses gives no method (a scope decision,
# docs/safety.md). Read on the sentence without spaces.
_REFUSAL = re.compile(
    r"(?:알려|가르쳐|도와|답해|말해|말씀|얘기해)(?:드릴|줄)수가?없|(?:알려|가르쳐|도와|답해|말해)(?:드리|주)지(?:는|도)?않"
    r"|(?:안|못)(?:알려|가르쳐)|돕지(?:는|도)?않|도울수없|(?:대답|답|얘기는|얘기|말)할수없|드릴수없|(?:방법|법)말고"
)
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+|\n+")


def output_evidence(reply: str) -> tuple[list[Hit], bool]:
    """The output rules' hits in a reply, sentence by sentence, without those in a sentence that refuses; and
    whether a refusal set any aside."""
    hits, refused = [], False
    for sentence in _SENTENCE_END.split(reply):
        norm = normalise_view(sentence)
        found = output_hits(norm)
        if found and _REFUSAL.search(norm.text):
            refused = True
            continue
        hits += found
    return hits, refused


# Every exception is a scope decision (docs/safety.md): a crisis the classifier finds where one of these matched is
# lowered to the exception's level. Third-party, negated and past wishes stay `concern`; the rest are `none`.
SCOPE_DECISIONS: dict[str, Level] = {rule.name: rule.level for rule in _EXCEPTIONS}


# ---------------------------------------------------------------------------------------------------
# Scope cues over lemmas (morph.py): whose risk, when, and about what. They never raise a level; combine.py lowers a
# rule's crisis with them only when the classifier disagrees too (docs/safety.md, "scope decisions").


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PEOPLE = _words(
    "친구 엄마 어머니 아빠 아버지 부모 부모님 동생 언니 오빠 누나 형 남편 아내 와이프 "
    "남자친구 여자친구 남친 여친 애인 동료 선배 후배 아들 딸 딸아이 아이 애 조카 사촌 "
    "삼촌 이모 고모 할머니 할아버지 외할머니 룸메이트 지인 걔 학생 제자 직원 팀원 상사 "
    "동기 반 친구들 사람 분 환자 내담자 형님 손자 손녀 시어머니 장모 장인 동창 짝꿍 "
    "여동생 남동생 "
)
_ME_TOO_LEMMAS = frozenset({"나/NP", "저/NP"})
_PAST = _words("예전 옛날 한때 과거 작년 재작년 그때 시절 이전 어리다 학창 당시 전 ")
_RECOVERED = _words(
    "괜찮아지다 나아지다 좋아지다 옅어지다 극복 회복 살만하다 이겨내다 졸업 끊다 사라지다 줄어들다 멈추다 벗어나다 "
    "단단하다 단단해지다 대견하다 "
)
# The present set against a past risk (… 했었는데 지금은 잘 지내요): a past tense on the risk, then one of these.
_NOW = _words("지금 이제 요즘 현재 요새 오늘날 ")
_NOW_FINE = frozenset(["괜찮다", "살다", "행복", "웃다", "안정"])
_AGAIN = frozenset({"다시/MAG", "또/MAG", "또다시/MAG"})
_NEGATION = frozenset({"아니다/VCN", "않다/VX", "없다/VA", "안/MAG", "못/MAG"})
_TOPICS = _words(
    "게임 영화 드라마 소설 웹툰 만화 책 주인공 캐릭터 작가 뉴스 기사 보도 통계 연구 "
    "논문 발표 과제 설문 캠페인 예방 교육 강의 수업 생명존중 지킴이 센터 사업 캠핑 고기 "
    "숯불 바베큐 캠핑장 회사 프로젝트 업무 알바 일 퇴사 글 게시물 댓글 계정 영상 "
    "브이로그 사진 피드 카페 약국 감기 처방 노래 가사 대본 연극 역할 연애 관계 이별 "
    "헤어지다 이사 짐 원룸 자취방 독립 루프탑 뷰 야경 졸업논문 보고서 마감 숯 삼겹살 "
    "목살 마당 해열제 유산균 영양제 비타민 약사 시럽 등산 전망대 조원 팀플 시험 택배 "
    "상자 박스 "
)


def _stem(lemma: str) -> str:
    return lemma.rsplit("/", 1)[0]


def scope_cues(sentences: tuple) -> frozenset[str]:
    """Which scope a message may belong to: `third_party`, `past`, `negated`, `topic` (a benign subject)."""
    lemmas = [lemma for sentence in sentences for lemma in sentence.lemmas]
    stems = {_stem(lemma) for lemma in lemmas}
    pairs = list(itertools.pairwise([*lemmas, ""]))  # "ㅋㅋ" has no lemma at all
    me_too = any(a in _ME_TOO_LEMMAS and b == "도/JX" for a, b in pairs)
    # Someone else is the subject (친구가, 동생은, 딸 일기장): a person named only as the listener (엄마한테) is not.
    someone = any(_stem(a) in _PEOPLE and b.endswith(("/JKS", "/JX", "/JKG", "/NNG")) for a, b in pairs)
    cues = set()
    if someone and not me_too:
        cues.add("third_party")
    recovered = stems & _RECOVERED or (stems & _PAST and (stems & _NOW_FINE or set(lemmas) & _NEGATION))
    if (recovered or _past_then_now(lemmas) or _replaced(lemmas)) and not set(lemmas) & _AGAIN:
        cues.add("past")
    if _negated_risk(lemmas) or _insincere(lemmas):
        cues.add("negated")
    if _asking_someone(lemmas):
        cues.add("third_party")
    if stems & _TOPICS:
        cues.add("topic")
    return frozenset(cues)


_RISK_STEMS = _words("죽다 자살 자해 해치다 사라지다 없어지다 극단 목숨 충동 생각 마음")
_NEGATION_REACH = 6  # lemmas after the risk word: 죽고 싶은 건 아니야 = 죽다 고 싶다 ᆫ 것 은 아니다


def _negated_risk(lemmas: list[str]) -> bool:
    """A negation close after a risk word (죽고 싶은 건 아니야), not one elsewhere (별일 아닌데 … 죽고 싶어)."""
    if any(a == "not/SL" and b.startswith(("suicid", "kms", "unalive")) for a, b in itertools.pairwise(lemmas)):
        return True
    return any(
        _stem(lemma) in _RISK_STEMS and set(lemmas[i + 1 : i + 1 + _NEGATION_REACH]) & _NEGATION
        for i, lemma in enumerate(lemmas)
    )


_SINCERE = _words("진심 진짜 정말 진지 ")
_PAST_REACH = 8  # lemmas after the risk word: 자살 시도 하 었었 = 자살 … 었었/EP


def _after_risk(lemmas: list[str], reach: int) -> list[tuple[int, list[str]]]:
    return [(i, lemmas[i + 1 : i + 1 + reach]) for i, lemma in enumerate(lemmas) if _stem(lemma) in _RISK_STEMS]


def _mentions_risk(lemmas: list[str]) -> bool:
    return any(_stem(lemma) in _RISK_STEMS for lemma in lemmas)


def _insincere(lemmas: list[str]) -> bool:
    """The risk words said and their sincerity denied (습관적인 말이고 진짜는 아님, 진심 아니고)."""
    return _mentions_risk(lemmas) and any(
        _stem(a) in _SINCERE and "아니다/VCN" in (b, c) for a, b, c in zip(lemmas, lemmas[1:], lemmas[2:], strict=False)
    )


def _past_then_now(lemmas: list[str]) -> bool:
    """A risk in the past tense and then the present set against it (했었는데 지금은 / 싶었는데 이제는)."""
    for i, after in _after_risk(lemmas, _PAST_REACH):
        past = [j for j, lemma in enumerate(after) if lemma.endswith("/EP") and any(c in lemma for c in "었았였")]
        if not past:
            continue
        later = lemmas[i + 1 + past[0] :]
        still = {"아직/MAG", "여전히/MAG", "계속/MAG"} & set(later) or any(
            _stem(a) in _NOW and b == "도/JX" for a, b in itertools.pairwise(later)
        )
        if {_stem(lemma) for lemma in later} & _NOW and not still:
            return True
    return False


def _replaced(lemmas: list[str]) -> bool:
    """A risk replaced by something else (자해 대신 운동을 시작했어)."""
    return any(_stem(a) in _RISK_STEMS and b == "대신/NNG" for a, b in itertools.pairwise(lemmas))


def _asking_someone(lemmas: list[str]) -> bool:
    """Whether to ask someone about the risk (죽고 싶냐고 물어봐도 돼?): a quoted question, then 묻다 or 물어보다."""
    return any(
        lemma in ("냐고/EC", "느냐고/EC", "냐는/ETM", "는지/EC")
        and {_stem(x) for x in lemmas[i + 1 : i + 5]} & {"묻다", "물어보다", "질문"}
        for i, lemma in enumerate(lemmas)
    ) and _mentions_risk(lemmas)


# ---------------------------------------------------------------------------------------------------
# Crisis rules over lemmas: one pattern covers every spelling and ending of a verb (가서 / 갈게 / 갑니다 → 가다/VV).
# Each runs on the message's lemmas joined as "lemma/TAG lemma/TAG ..." (morph.py).

_ANY = r"(?:\S+ )"
_LEMMA_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(f"(?:^| ){pattern}"))  # a pattern starts at a lemma: 계약/NNG is not 약/NNG
    for name, pattern in (
        ("farewell_going_first", rf"먼저/MAG {_ANY}{{0,2}}(?:가다|떠나다)/VV {_ANY}{{0,3}}(?:미안|죄송|용서)"),
        ("following_the_dead", rf"따라(?:가다|죽다)/VV {_ANY}{{0,2}}(?:싶다/VX|ᆯ래/EF|ᆯ게/EF|려고/EC|야지/EF)"),
        ("disguised_as_accident", rf"사고/NNG 처럼/JKB {_ANY}{{0,2}}(?:보이다/VV|위장/NNG|꾸미다/VV)"),
        ("collecting_pills", rf"(?:약|수면제|알약|약통|수면유도제|진통제)/NNG {_ANY}{{0,12}}모으다/VV"),
        ("hurting_the_body", rf"(?:팔|손목|팔목|허벅지|살)/NNG {_ANY}{{0,2}}(?:지지다|긋다|베다)/VV"),
        ("taken_away", rf"(?:저승사자|저승|하늘나라)/NNG {_ANY}{{0,4}}데려가다/VV"),
    )
)


def lemma_hits(sentences: tuple) -> list[Hit]:
    """Crisis rules over the lemma view; the position is the sentence's index (lemmas have no text offsets)."""
    hits = []
    for index, sentence in enumerate(sentences):
        joined = " ".join(sentence.lemmas)
        hits.extend(Hit(name, "crisis", index, index + 1) for name, pattern in _LEMMA_RULES if pattern.search(joined))
    return hits


# A message or reply that is only a greeting, thanks, goodbye or a one-word answer (normalised form): the classifier
# has too little to read in it (안녕 also closes farewells), so it is `none` by scope; in a conversation the context
# still reads it (응 to a screening question is a crisis).
PHATIC = _words(
    "안녕 안녕하세요 안녕하세여 안뇽 하이 하이요 ㅎㅇ hi hello hey 반가워 반가워요 반갑습니다 응 웅 어 엉 네 넵 넹 예 "
    "ㅇㅇ ㅇㅋ 오키 오케이 ok okay 알겠어 알겠어요 알겠습니다 그래 그래요 그렇구나 그렇군요 좋아 좋아요 고마워 "
    "고마워요 고맙습니다 감사합니다 감사해요 땡큐 thx thanks ㄱㅅ ㄳ 천만에요 별말씀을요 잘자 잘자요 굿밤 굿나잇 "
    "바이 바이바이 빠이 ㅂㅂ 또봐 내일봐 수고하세요 수고했어 수고하셨어요 "
    # One-word answers of degree carry their meaning from the question (많이 힘드세요? — 많이): the context stage
    # reads them as answers; alone they say nothing (the demo graded a bare 많이 crisis).
    "많이 조금 좀 약간 그냥 별로 글쎄 글쎄요"
)


def is_phatic(norm: Normalised) -> bool:
    return norm.text in PHATIC


def only_punctuation(text: str) -> bool:
    """Nothing but punctuation and spaces ("...", "?!"): nothing to read. Emoji are read (💊, 🪢 stand for means)."""
    return all(unicodedata.category(c)[0] in "PZ" for c in text)
