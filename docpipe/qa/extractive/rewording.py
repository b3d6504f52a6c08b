"""Rule-based rewording of a question (`paraphrase`): the same request and answer in other words, for
probe sets that detect memorised phrasing."""

from __future__ import annotations

import re

from docpipe.runtime.citation import content_words

MAX_JACCARD = 0.7  # word-level overlap above which a rewording is too close to probe for memorised phrasing
# Words swapped for a synonym, in every inflection a question uses: the frame words of the question rules and common verbs.
_SYNONYMS = {
    "document": "file",
    "section": "part",
    "say": "state",
    "says": "states",
    "information": "details",
    "items": "entries",
    "listed": "named",
    "include": "contain",
    "includes": "contains",
    "included": "contained",
    "contain": "include",
    "contains": "includes",
    "contained": "included",
    "use": "employ",
    "uses": "employs",
    "used": "employed",
    "using": "employing",
    "show": "indicate",
    "shows": "indicates",
    "showed": "indicated",
    "provide": "supply",
    "provides": "supplies",
    "provided": "supplied",
    "require": "need",
    "requires": "needs",
    "required": "needed",
    "need": "require",
    "needs": "requires",
    "needed": "required",
    "make": "create",
    "makes": "creates",
    "made": "created",
    "get": "obtain",
    "gets": "obtains",
    "obtain": "get",
    "obtains": "gets",
    "begin": "start",
    "begins": "starts",
    "began": "started",
    "help": "assist",
    "helps": "assists",
    "helped": "assisted",
    "allow": "permit",
    "allows": "permits",
    "allowed": "permitted",
    "buy": "purchase",
    "buys": "purchases",
    "bought": "purchased",
    "build": "construct",
    "builds": "constructs",
    "built": "constructed",
    "choose": "select",
    "chooses": "selects",
    "chose": "selected",
    "chosen": "selected",
    "select": "choose",
    "selects": "chooses",
    "recommend": "advise",
    "recommends": "advises",
    "recommended": "advised",
    "conduct": "carry out",
    "conducts": "carries out",
    "conducted": "carried out",
    "increase": "raise",
    "increases": "raises",
    "increased": "raised",
    "reduce": "lower",
    "reduces": "lowers",
    "reduced": "lowered",
    "happen": "occur",
    "happens": "occurs",
    "happened": "occurred",
    "large": "big",
    "big": "large",
    "main": "principal",
    "important": "significant",
    "located": "situated",
    "total": "overall",
    "receive": "get",
    "receives": "gets",
    "order": "command",
    "ordered": "commanded",
    "orders": "commands",
    "identify": "pinpoint",
    "identifies": "pinpoints",
    "identified": "pinpointed",
    "specify": "state",
    "specifies": "states",
    "specified": "stated",
    "define": "specify",
    "defines": "specifies",
    "defined": "specified",
}
# Words that carry a question's shape rather than its meaning: a paraphrase may drop or swap them.
_FRAME_WORDS = frozenset(
    "say state information give details document file section part listed named items entries "
    "according said stated mentioned found explain tell know could would number count come comes after "
    "words follow follows opening written heading text learned details regarding sentence starting "
    "continue".split()
)
_PREPOSITIONS = frozenset(
    "about above across after against along among around at before behind below beneath beside between "
    "by during for from in inside into like near of off on onto out outside over per since through "
    "throughout to toward towards under until up upon via with within without".split()
)
_DETERMINERS = frozenset("a an the this that these those some any each every no its their his her our your my".split())
_VERBS = frozenset(
    "have include contain use provide require need make get obtain give show take find see know mean say tell offer cover "
    "involve allow help create produce increase reduce remove recommend replace define describe explain identify establish "
    "support specify select choose consider conduct perform enter affect cause treat play win score reach build open close "
    "begin start end leave keep hold buy sell pay receive send bring carry deliver publish release present report propose "
    "develop design order employ mark put set run move change add form follow lead lose meet serve spend study suggest teach "
    "write read call ask feel become try want like prefer expect wear protect prevent enjoy check visit attack launch issue "
    "sign submit implement apply list store cross deploy destroy capture claim announce adopt do spoil present complicate "
    "delegate conduct further replenish determine require examine measure compare contain estimate assess".split()
)
_IRREGULAR_PAST = {
    "have": "had",
    "do": "did",
    "make": "made",
    "get": "got",
    "give": "gave",
    "take": "took",
    "find": "found",
    "see": "saw",
    "know": "knew",
    "mean": "meant",
    "say": "said",
    "tell": "told",
    "win": "won",
    "build": "built",
    "begin": "began",
    "leave": "left",
    "keep": "kept",
    "hold": "held",
    "buy": "bought",
    "sell": "sold",
    "pay": "paid",
    "send": "sent",
    "bring": "brought",
    "lead": "led",
    "lose": "lost",
    "meet": "met",
    "spend": "spent",
    "teach": "taught",
    "write": "wrote",
    "read": "read",
    "become": "became",
    "wear": "wore",
    "put": "put",
    "set": "set",
    "run": "ran",
    "choose": "chose",
    "go": "went",
    "come": "came",
    "think": "thought",
    "feel": "felt",
    "stand": "stood",
    "sit": "sat",
    "lie": "lay",
    "draw": "drew",
    "grow": "grew",
    "throw": "threw",
    "fall": "fell",
    "rise": "rose",
    "drive": "drove",
    "ride": "rode",
    "speak": "spoke",
    "break": "broke",
    "forget": "forgot",
    "hear": "heard",
    "catch": "caught",
    "fight": "fought",
    "seek": "sought",
    "sing": "sang",
    "swim": "swam",
    "eat": "ate",
    "drink": "drank",
    "fly": "flew",
    "cut": "cut",
    "hit": "hit",
    "let": "let",
    "shut": "shut",
    "plan": "planned",
    "stop": "stopped",
    "drop": "dropped",
    "admit": "admitted",
    "commit": "committed",
    "occur": "occurred",
    "prefer": "preferred",
    "refer": "referred",
    "submit": "submitted",
    "permit": "permitted",
    "control": "controlled",
    "ban": "banned",
}


def paraphrase(question: str, seed: int = 0) -> str | None:
    """A rewording of `question` with the same meaning and answer, or None when no rule applies.

    The wording differs materially (word-level Jaccard overlap below MAX_JACCARD) while the words
    that carry the meaning stay; `seed` picks among the rewordings that qualify.
    """
    q = " ".join(question.split()).rstrip("?").strip()
    if not q:
        return None
    candidates = []
    for body in _reframings(q) + [_reorder(q)]:
        if body:
            candidates += [body, _swap_words(body), _reorder(_swap_words(body)) or ""]
    candidates.append(_swap_words(q))
    seen, good = set(), []
    for body in candidates:
        text = _cap(" ".join(body.split())).rstrip(" ?,") + "?" if body else ""
        if text and text.lower() not in seen and _jaccard(text, question) < MAX_JACCARD and _keeps_meaning(question, text):
            seen.add(text.lower())
            good.append(text)
    return good[seed % len(good)] if good else None


def _reframings(q: str) -> list[str]:
    """Other question frames for the same request, by the shape of the question."""
    if m := _ACCORDING_TAIL.match(q):  # reframe the question, keep where it is asked of
        return [f"{' '.join(body.split())}, {m['tail']}" for body in _reframings(m["q"])]
    for pattern, templates in _FRAMES:
        if m := pattern.match(q):
            groups = {k: v or "" for k, v in m.groupdict().items()}
            return [t(groups) if callable(t) else t.format(**groups) for t in templates if not callable(t) or t(groups)]
    return _do_question(q)


_FRAMES: list[tuple[re.Pattern, tuple]] = [
    (re.compile(p), t)
    for p, t in [
        (
            (
                r"^(?:What is said about (?P<t>.+) in|What information about (?P<t2>.+) does|What can be learned about (?P<t3>.+) from) "
                r'(?P<src>the (?:section|document|email) "[^"]+")(?: give)?$'
            ),
            (
                lambda g: f"Regarding {_topic(g)}, what is stated in {g['src']}",
                lambda g: f"What does {g['src']} say about {_topic(g)}",
                lambda g: f"What details on {_topic(g)} can be found in {g['src']}",
            ),
        ),
        (
            r'^What does (?P<src>the (?:section|document|email) "[^"]+") say about (?P<t>.+)$',
            (
                lambda g: f"Regarding {_topic(g)}, what is stated in {g['src']}",
                lambda g: f"What is mentioned about {_topic(g)} in {g['src']}",
            ),
        ),
        (r'^What is the section (?P<h>"[^"]+") about$', ("What topic does the part {h} cover", "What is discussed in the part {h}")),
        (
            r'^What is written under (?P<l>"[^"]+") in (?P<src>.+)$',
            ("What does {src} say under the heading {l}", "Under the heading {l}, what text does {src} give"),
        ),
        (
            r'^Which items follow (?P<w>"[^"]+") in the list (?P<where>.+)$',
            ("What comes after {w} in the list {where}", "Which entries come after {w} in the list {where}"),
        ),
        (r"^What does (?P<src>.+) say$", ("What is written in {src}", "What text does {src} contain")),
        (
            r'^What comes after the words (?P<w>"[^"]+") in (?P<src>.+)$',
            ("How does the sentence starting with {w} in {src} continue", "Which text follows the opening {w} in {src}"),
        ),
        (r"^What items are listed (?P<where>.+)$", ("Which entries are named {where}", "Can you name the entries given {where}")),
        (
            r"^What are the (?P<n>.+?) listed (?P<where>(?:under|in) .+)$",
            ("Which {n} are named {where}", "Could you name the {n} given {where}"),
        ),
        (
            r"^How many (?P<rest>.+)$",
            (
                "What number of {rest}",
                lambda g: not re.search(r"\b(?:does|do|did)\b", g["rest"]) and f"Could you tell me how many {g['rest']}",
            ),
        ),
        (
            r"^When (?P<aux>did|does|do|was|were|is|are|will|has|have|had) (?P<rest>.+)$",
            ("At what time {aux} {rest}", "On what date {aux} {rest}", "At what point in time {aux} {rest}"),
        ),
        (r"^Where (?P<aux>\w+) (?P<rest>.+)$", ("In what place {aux} {rest}", "At which location {aux} {rest}")),
        (r"^Why (?P<aux>\w+) (?P<rest>.+)$", ("For what reason {aux} {rest}",)),
        (r"^How (?P<aux>is|are|was|were) (?P<rest>.+)$", ("In what way {aux} {rest}", "By what means {aux} {rest}")),
        (r"^Who (?P<aux>is|was) (?P<x>.+)$", ("Could you tell me who {x} {aux}", "Can you say who {x} {aux}")),
        (r"^Who (?P<rest>.+)$", ("Which person or body {rest}", "Can you name the one who {rest}")),
        (
            r'^What (?P<aux>is|are|was|were) the (?P<col>.+?) (?:of|for) (?P<key>.+?)(?P<where> in the "[^"]+" table)?$',
            ("For {key}, what {aux} the {col}{where}", "Could you tell me the {col} recorded for {key}{where}"),
        ),
        (r"^What does (?P<x>.+) (?P<v>mean|stand for|refer to)$", ("What is meant by {x}", "What is the meaning of {x}")),
        (r"^What do (?P<x>.+) (?P<v>mean|refer to)$", ("What is meant by {x}", "What is the meaning of {x}")),
        (
            r"^What (?P<aux>is|are|was|were) (?!(?:said|written|stated|mentioned|meant|known|given|listed|shown)\b)(?P<x>.+)$",
            (
                "Could you tell me what {x} {aux}",
                "Do you know what {x} {aux}",
                lambda g: len(g["x"].split()) <= 5 and not re.search(r"\d|\bthe\b.*\bof\b", g["x"]) and f"How would you define {g['x']}",
            ),
        ),
    ]
]


_ACCORDING_TAIL = re.compile(r"^(?P<q>.+?), (?P<tail>according to .+)$")


def _topic(groups: dict) -> str:
    return groups.get("t") or groups.get("t2") or groups["t3"]


def _do_question(q: str) -> list[str]:
    """'What does the exercise involve' -> 'Could you tell me what the exercise involves'."""
    m = re.match(r"^(?P<wh>What|Which [\w -]+?) (?P<aux>does|do|did|can|could|may|might|must|shall|should|will|would) (?P<body>.+)$", q)
    if not m:
        return []
    words = m["body"].split()
    verb = next((i for i, w in enumerate(words) if i and w in _VERBS and words[i - 1].lower() not in _DETERMINERS), None)
    if verb is None:
        verb = next(
            (
                i
                for i, w in enumerate(words)
                if i
                and w.isalpha()
                and w.islower()
                and words[i - 1].lower() not in _DETERMINERS
                and (i + 1 == len(words) or words[i + 1].lower() in _PREPOSITIONS)
            ),
            None,
        )
    if verb is None:
        return []
    subject, rest, aux = " ".join(words[:verb]), " ".join(words[verb + 1 :]), m["aux"]
    form = {"does": _third_person, "do": str, "did": _past}.get(aux)
    verb_phrase = form(words[verb]) if form else f"{aux} {words[verb]}"
    wh = m["wh"][:1].lower() + m["wh"][1:]
    return [f"Could you tell me {wh} {subject} {verb_phrase} {rest}", f"{m['wh']} is it that {subject} {verb_phrase} {rest}"]


def _third_person(verb: str) -> str:
    if verb in ("have", "be", "do", "go"):
        return {"have": "has", "be": "is", "do": "does", "go": "goes"}[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _past(verb: str) -> str:
    if verb in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def _swap_words(text: str, synonyms: dict[str, str] = _SYNONYMS) -> str:
    """Common words for their synonyms, outside quoted titles."""
    parts = re.split(r'("[^"]*")', text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\b[A-Za-z]+\b", lambda m: _match_case(m.group(), synonyms.get(m.group().lower())), parts[i])
    return "".join(parts)


def _match_case(word: str, replacement: str | None) -> str:
    if replacement is None:
        return word
    return replacement[:1].upper() + replacement[1:] if word[:1].isupper() else replacement


def _reorder(text: str) -> str | None:
    """A trailing ', according to X' or ' in the "X" table' moved to the front of the question."""
    if m := re.match(r"^(?P<q>.+?),? (?P<tail>according to .+|in the \"[^\"]+\" table)$", text):
        return f"{_cap(m['tail'])}, {m['q'][:1].lower() + m['q'][1:]}"
    return None


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _jaccard(a: str, b: str) -> float:
    wa, wb = set(re.findall(r"[^\W_]+", a.lower())), set(re.findall(r"[^\W_]+", b.lower()))
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def _keeps_meaning(question: str, rewording: str) -> bool:
    """Names, numbers and quoted titles all stay; of the other content words, all but a swapped verb or two."""
    for token in re.findall(r'"[^"]+"|\b\d[\d,.]*\b|(?<=\w )[A-Z][\w-]+', question):
        if token.lower() not in rewording.lower():
            return False
    meaning = _stems(question) - _FRAME_STEMS
    if not meaning:
        return True
    kept = _stems(rewording) | _stems(_swap_words(rewording)) | _stems(_swap_words(rewording, _REVERSE_SYNONYMS))
    return len(meaning & kept) / len(meaning) >= 0.7


def _stems(text: str) -> set[str]:
    return {w[:5] for w in content_words(text)}  # crude, so that 'involve' meets 'involves'


_FRAME_STEMS = frozenset(_stems(" ".join(_FRAME_WORDS)))
_REVERSE_SYNONYMS = {v: k for k, v in _SYNONYMS.items() if " " not in v}
