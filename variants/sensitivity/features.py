"""Feature extraction for the payload sensitivity model (FIG. 2.3 step 242).

Two blocks:

- *dense* features: the recognisers' validated hits and cue signals from
  `patterns.scan`, plus a few interactions (an identifier next to "my", a
  name next to another identifier, an identifier inside a general question
  or an example). These carry most of the decision and generalise beyond
  the training templates.
- *sparse* n-grams: lower-cased word unigrams and bigrams (numbers reduced
  to their shape) and the first and last four letters of longer words, so
  misspelt cue words ("diabetis", "mortage") still share features with the
  right spelling. The n-gram block is L2-normalised so that a long prompt
  does not score higher just for being long.

Pure Python, no Django.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from itertools import pairwise

from .patterns import CATEGORIES, Scan, scan

# Bumped whenever a recogniser changes what a feature column means (12: coordinates given
# for a public place locate nobody; a condition stated by "she"/"he" is health evidence;
# "she's on 96k" is someone's pay; device labels reach a value after "it's"; Indian PANs and
# birth dates written in words; 13: health, relation and possessive words, birth dates and
# labels in Spanish, Portuguese, French, German and Italian; stand-ins in brackets and passwords
# in a plot are no secrets; a room or floor number counts apart from an apartment or suite;
# 14: PINs later in the sentence, "wks along", public places' postcodes; 15: words that put a
# person in public view; 16: evidence weights trained at or above zero; 17: an organisation's
# own phone and address; 18: licences, "my test came back positive", "the US"; 19: a key=
# value's value judged alone, Indian house numbers and salaries; 20: credit bureaus, euro
# amounts with the sign after, part and VAT numbers, medicine questions), so artifacts trained
# before are refused and `make run` retrains one (about twenty seconds).
FEATURE_VERSION = "sens-features-22"

# N-grams are taken from the first this-many tokens only: the cost of a call
# stays bounded while patterns still scan the whole (capped) text.
NGRAM_TOKEN_CAP = 192
CHAR_NGRAM = 4
# Words at least this long also contribute their first and last CHAR_NGRAM
# letters, so "diabetis" still shares "p:diab" with "diabetes". (Full in-word
# character n-grams cost four times the lookups for no measurable gain on
# held-out templates.) Longer "words" (base64 blobs, runs of one letter) get none.
MIN_AFFIX_WORD = 6
MAX_CHAR_NGRAM_WORD = 40

# Signals copied into the dense block as log(1 + count).
SIGNAL_FEATURES: tuple[str, ...] = (
    # contact data
    "email", "email_role", "email_placeholder",
    "phone", "phone_intl", "phone_local", "phone_generic", "phone_ctx", "phone_tollfree",
    "phone_fictional", "phone_business",
    # government ids
    "ssn", "ssn_ctx", "ssn_label", "ssn_invalid", "ssn_example", "itin", "gov_id", "gov_id_invalid",
    "gov_id_placeholder", "gov_label_on_number", "gov_id_unverified", "nino",
    # payment and banking
    "card", "card_ctx", "card_test", "card_invalid", "card_unverified", "luhn_number", "cvv", "card_expiry",
    "card_last4", "iban", "iban_invalid", "iban_unverified", "iban_example", "routing", "routing_invalid",
    "account_number", "sort_code", "swift",
    # credentials
    "api_key", "api_key_test", "private_key", "jwt", "url_credentials", "password", "login_pair",
    "pin", "otp",
    "secret_assignment", "secret_placeholder", "secret_lowentropy", "high_entropy", "public_key", "uuid",
    "hex_string",
    # devices
    "imei", "imei_like", "imei_invalid", "imei_unverified", "mac", "mac_placeholder", "serial",
    "serial_placeholder", "ipv4_public", "ipv4_private", "version_like",
    # dates and ages
    "dob", "birth_year", "dob_historic", "age",
    # addresses and locations
    "street_address", "street_after_cue", "street_name", "postcode", "po_box", "unit", "room",
    "address_landmark", "address_cue", "gps", "location_cue",
    # names
    "name_intro", "name_title", "name_field", "name_relation", "name_greeting", "name_signoff",
    "name_pair", "name_after_verb", "name_affiliation", "full_name", "public_figure", "employer_cue",
    # health and money
    "health_term", "health_term_anchored", "clinical_term", "clinical_term_anchored",
    "health_value", "health_value_generic", "health_disclosure", "financial_disclosure",
    "dosage", "dosage_anchored", "dosage_regimen", "treatment_cycle", "med_context", "clinical_report",
    "medical_record_number",
    "finance_term",
    "finance_term_anchored", "money", "money_anchored", "credit_score_value",
    "credit_score_number",
    # prompt form
    "first_person", "relation", "implied_self", "professional_context", "generic_opener",
    "question_mark_end", "question_marks", "example_cue", "public_context", "code_cue", "env_reference",
)  # fmt: skip

_SIGNAL_INDEX = {name: k for k, name in enumerate(SIGNAL_FEATURES)}

# Categories whose mere cue (not a validated value) is the evidence.
SOFT_CATEGORIES = frozenset({"person_name", "financial", "health", "location"})

INTERACTION_FEATURES: tuple[str, ...] = (
    "strong_any",
    "strong_categories",
    "soft_categories",
    "strong_x_first_person",
    "strong_x_generic_question",
    "strong_x_example",
    "strong_x_code",
    "name_x_other_category",
    "name_x_first_person",
    "health_x_first_person",
    "health_x_relation",
    "health_x_generic_question",
    "finance_x_first_person",
    "finance_x_money",
    "finance_x_generic_question",
    "location_x_address",
    "generic_question_no_person",
    "example_no_strong",
    "credential_x_code",
    "credential_x_env_reference",
)

DENSE_NAMES: tuple[str, ...] = (
    tuple(f"sig:{name}" for name in SIGNAL_FEATURES)
    + tuple(f"strong:{c}" for c in CATEGORIES)
    + tuple(f"cat:{c}" for c in CATEGORIES)
    + tuple(f"x:{name}" for name in INTERACTION_FEATURES)
)


# Signals that say a value is a stand-in, a test value, a public one, or that describe the
# prompt's form or a topic without a person: training leaves their weights free. Every other
# dense feature (validated identifiers, names, anchored health and money facts, the strong
# and category indicators and the interactions that combine evidence) is evidence *for* a
# disclosure, and training keeps its weight at or above zero. Without that bound, features
# that always come together (a name field and the date of birth beside it in a form) split
# their weight into a large positive and a large negative part, and a form holding only one
# of them scored as if it disclosed less than nothing.
FREE_SIGNALS = frozenset(
    {"email_role", "email_placeholder", "phone_tollfree", "phone_fictional", "phone_business", "ssn_invalid",
     "ssn_example", "gov_id_invalid", "gov_id_placeholder", "card_test", "card_invalid",
     "luhn_number", "iban_invalid", "iban_example", "routing_invalid", "api_key_test",
     "secret_placeholder", "secret_lowentropy", "high_entropy", "public_key", "uuid", "hex_string",
     "imei_like", "imei_invalid", "mac_placeholder", "serial_placeholder", "ipv4_private", "version_like",
     "dob_historic", "birth_year", "age", "public_figure", "address_landmark", "address_cue",
     "location_cue", "unit", "room", "health_term", "clinical_term", "finance_term", "money",
     "dosage", "health_value_generic", "med_context", "credit_score_number", "employer_cue",
     "first_person", "relation", "implied_self", "professional_context", "generic_opener",
     "question_mark_end", "question_marks", "example_cue", "public_context", "code_cue",
     "env_reference"}
)  # fmt: skip
FREE_INTERACTIONS = frozenset(
    {"strong_x_generic_question", "strong_x_example", "strong_x_code", "health_x_generic_question",
     "finance_x_generic_question", "generic_question_no_person", "example_no_strong",
     "credential_x_code", "credential_x_env_reference"}
)  # fmt: skip
assert set(SIGNAL_FEATURES) >= FREE_SIGNALS and set(INTERACTION_FEATURES) >= FREE_INTERACTIONS


def nonnegative_dense() -> list[bool]:
    """Return, in `DENSE_NAMES` order, whether training keeps each dense weight at or above zero."""
    return (
        [name not in FREE_SIGNALS for name in SIGNAL_FEATURES]
        + [True] * (2 * len(CATEGORIES))
        + [name not in FREE_INTERACTIONS for name in INTERACTION_FEATURES]
    )


def feature_config() -> dict[str, object]:
    """Return the settings that fix the meaning of every feature column."""
    return {
        "version": FEATURE_VERSION,
        "ngram_token_cap": NGRAM_TOKEN_CAP,
        "char_ngram": CHAR_NGRAM,
        "max_char_ngram_word": MAX_CHAR_NGRAM_WORD,
        "min_affix_word": MIN_AFFIX_WORD,
        "dense_names": list(DENSE_NAMES),
        "nonnegative_dense": [
            name for name, bound in zip(DENSE_NAMES, nonnegative_dense(), strict=True) if bound
        ],
    }


def feature_config_hash() -> str:
    """Return a short digest of `feature_config()`; artifacts record it."""
    blob = json.dumps(feature_config(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# A sparse feature: a word, affix or other string, or a (word, word) bigram.
Gram = str | tuple[str, str]


@dataclass(slots=True)
class Features:
    ngrams: set[Gram]
    dense: list[float]
    scan: Scan


def _shape(token: str) -> str:
    """Reduce a token with digits to its shape, so numbers don't become vocabulary."""
    if token.isdigit():
        return f"<num{min(len(token), 12)}>"
    if token.isalpha():
        return token
    letters = sum(c.isalpha() for c in token)
    digits = sum(c.isdigit() for c in token)
    if digits and letters:
        # "5-day", "30-year", "3rd", "10k" are quantities, not identifiers.
        if "-" in token and token.split("-", 1)[0].isdigit():
            return "<num-word>"
        if token[:-2].isdigit() and token[-2:] in ("st", "nd", "rd", "th"):
            return "<ordinal>"
        if token[:-1].isdigit() and token[-1] in "kmb":
            return "<num-k>"
        return f"<alnum{min(len(token) // 4, 6)}>"
    if digits:
        return f"<numsep{min(len(token) // 4, 6)}>"  # "536-22-8171", "2024-05-01"
    return token


# token -> (shaped word, bigram prefix, unigram and affix features). Words repeat
# across prompts, so the cache saves most of the string slicing; it is
# cleared when full rather than managed as an LRU, which is cheaper.
_WORD_CACHE: dict[str, tuple[str, tuple[str, ...]]] = {}
_WORD_CACHE_MAX = 50_000


def _word_features(token: str) -> tuple[str, tuple[str, ...]]:
    """Return (shaped word, its unigram and affix features)."""
    cached = _WORD_CACHE.get(token)
    if cached is not None:
        return cached
    word = _shape(token)
    feats = ["w:" + word]
    if MIN_AFFIX_WORD <= len(word) <= MAX_CHAR_NGRAM_WORD and word.isalpha():
        feats.append("p:" + word[:CHAR_NGRAM])
        feats.append("s:" + word[-CHAR_NGRAM:])
    entry = (word, tuple(feats))
    if len(_WORD_CACHE) >= _WORD_CACHE_MAX:
        _WORD_CACHE.clear()
    _WORD_CACHE[token] = entry
    return entry


def ngrams(tokens: list[str]) -> set[Gram]:
    """Return word unigrams and affixes (strings) and bigrams (pairs) of the first tokens.

    Bigrams are tuples of the cached word strings rather than new strings:
    hashing a pair of already-hashed strings is far cheaper than hashing a
    fresh "b:word word" string, and this is the hottest loop of a call.
    """
    cache_get = _WORD_CACHE.get
    entries = [cache_get(t) or _word_features(t) for t in tokens[:NGRAM_TOKEN_CAP]]
    if not entries:
        return set()
    grams: set[Gram] = set().union(*[e[1] for e in entries])
    words = [e[0] for e in entries]
    grams.update(pairwise(words))
    return grams


def gram_name(gram: Gram) -> str:
    """Return the artifact's name for a gram: bigrams are stored as "b:first second"."""
    if isinstance(gram, tuple):
        return "b:" + gram[0] + " " + gram[1]
    return gram


def gram_from_name(name: str) -> Gram:
    """Return the in-memory gram for an artifact name (inverse of `gram_name`)."""
    if name.startswith("b:"):
        first, _, second = name[2:].partition(" ")
        return (first, second)
    return name


def _log1p(value: int | float) -> float:
    return math.log1p(value) if value > 0 else 0.0


def dense_features(text: str, result: Scan) -> list[float]:
    """Return the dense block in `DENSE_NAMES` order."""
    signals = result.signals
    # Most signals are zero: fill in only those a recogniser counted.
    values = [0.0] * len(SIGNAL_FEATURES)
    index = _SIGNAL_INDEX
    for name, count in signals.items():
        k = index.get(name)
        if k is not None and count > 0:
            values[k] = math.log1p(count)

    strong = {c: 0 for c in CATEGORIES}
    cats = {c: 0 for c in CATEGORIES}
    for ev in result.evidence:
        cats[ev.category] += 1
        if ev.strong:
            strong[ev.category] += 1
    values += [1.0 if strong[c] else 0.0 for c in CATEGORIES]
    values += [1.0 if cats[c] else 0.0 for c in CATEGORIES]

    strong_any = 1.0 if any(strong.values()) else 0.0
    n_strong = sum(1 for c in CATEGORIES if strong[c])
    n_soft = sum(1 for c in SOFT_CATEGORIES if cats[c])
    first_person = 1.0 if signals.get("first_person", 0) else 0.0
    relation = 1.0 if signals.get("relation", 0) else 0.0
    generic_q = 1.0 if signals.get("generic_opener", 0) else 0.0
    example = 1.0 if signals.get("example_cue", 0) else 0.0
    code = 1.0 if signals.get("code_cue", 0) else 0.0
    env_ref = 1.0 if signals.get("env_reference", 0) else 0.0
    has_name = 1.0 if cats["person_name"] else 0.0
    other_cats = sum(1 for c in CATEGORIES if c != "person_name" and cats[c])
    health = 1.0 if cats["health"] else 0.0
    finance = 1.0 if cats["financial"] else 0.0
    money = 1.0 if signals.get("money_anchored", 0) else 0.0
    credential = 1.0 if strong["credential"] else 0.0

    values += [
        strong_any,
        _log1p(n_strong),
        _log1p(n_soft),
        strong_any * first_person,
        strong_any * generic_q,
        strong_any * example,
        strong_any * code,
        has_name * (1.0 if other_cats else 0.0),
        has_name * first_person,
        health * first_person,
        health * relation,
        health * generic_q,
        finance * first_person,
        finance * money,
        finance * generic_q,
        (1.0 if cats["location"] else 0.0) * (1.0 if cats["address"] else 0.0),
        generic_q * (1.0 - first_person) * (1.0 - relation),
        example * (1.0 - strong_any),
        credential * code,
        credential * env_ref,
    ]
    return values


def extract(text: str) -> Features:
    """Scan `text` and return its n-gram set and dense feature vector."""
    result = scan(text)
    return Features(ngrams(result.tokens), dense_features(text, result), result)


# ---------------------------------------------------------------------------
# Inference: the n-gram block's score without building the n-gram set

# A token's word, prefix and suffix ids share one int64 code, _ID_BITS bits each.
_ID_BITS = 21
_ID_MASK = (1 << _ID_BITS) - 1
# Ids of words and affixes outside the vocabulary are handed out as they are first
# seen; past this many the tables start again, so memory stays bounded.
_MAX_UNSEEN_IDS = 200_000
_PREFIX_TAG = 1 << 60
_SUFFIX_TAG = 2 << 60
_PAIR_TAG = 3 << 60
_SENTINEL = (1 << 63) - 1


class NgramScorer:
    """Score the n-gram block of `ngrams(tokens)` against a weight table, vectorised.

    `score(tokens)` returns `(sum of the weights of the distinct grams, number of
    distinct grams)`, exactly what summing the weights over the set `ngrams(tokens)`
    gives (the weights are added with `math.fsum`, so their order does not change
    the result), without building that set: every token maps (cached) to one
    integer holding its word's id and its prefix and suffix ids; numpy then turns
    the tokens into one array of gram codes (words, prefixes, suffixes and word
    pairs, told apart by a tag in the high bits), sorts it once to drop
    repeats, and finds the weights with one binary search in the sorted codes of
    the vocabulary. Vocabulary words and affixes get ids 1..V (0 means "no
    affix"); others get fresh ids above V, so distinct unseen words stay distinct.

    Safe to share between threads: ids come from `itertools.count` and are bound
    with `dict.setdefault`, both atomic under the GIL, and a call reads its tables
    once, so a reset of full tables by another call cannot mix two id spaces.
    """

    def __init__(self, weights: dict[Gram, float]) -> None:
        import numpy as np

        self._np = np
        words: dict[str, int] = {}
        prefixes: dict[str, int] = {}
        suffixes: dict[str, int] = {}
        for gram in weights:
            if isinstance(gram, tuple):
                for word in gram:
                    words.setdefault(word, len(words) + 1)
            elif gram[:2] == "w:":
                words.setdefault(gram[2:], len(words) + 1)
            elif gram[:2] == "p:":
                prefixes.setdefault(gram[2:], len(prefixes) + 1)
            elif gram[:2] == "s:":
                suffixes.setdefault(gram[2:], len(suffixes) + 1)
            else:
                raise ValueError(f"unknown n-gram {gram!r}")
        if max(len(words), len(prefixes), len(suffixes)) + _MAX_UNSEEN_IDS + 2 > _ID_MASK:
            raise ValueError("n-gram vocabulary too large for the id encoding")
        self._vocab = (words, prefixes, suffixes)
        coded: dict[int, float] = {}
        for gram, weight in weights.items():
            if isinstance(gram, tuple):
                coded[_PAIR_TAG | (words[gram[0]] << _ID_BITS) | words[gram[1]]] = weight
            elif gram[:2] == "w:":
                coded[words[gram[2:]]] = weight
            elif gram[:2] == "p:":
                coded[_PREFIX_TAG | prefixes[gram[2:]]] = weight
            else:
                coded[_SUFFIX_TAG | suffixes[gram[2:]]] = weight
        codes = sorted(coded)
        # A sentinel above every code keeps the binary search's answers in range.
        self._codes = np.array([*codes, _SENTINEL], dtype=np.int64)
        self._weights = np.array([*(coded[c] for c in codes), 0.0])
        self._reset()

    def _reset(self) -> None:
        import itertools

        words, prefixes, suffixes = self._vocab
        # (token -> code, the three id tables and their counters), replaced as a whole.
        self._tables = (
            {},
            dict(words),
            dict(prefixes),
            dict(suffixes),
            itertools.count(len(words) + 1),
            itertools.count(len(prefixes) + 1),
            itertools.count(len(suffixes) + 1),
        )

    def _code(self, token: str, tables: tuple) -> int:
        codes, words, prefixes, suffixes, next_word, next_prefix, next_suffix = tables
        word, feats = _word_features(token)
        code = words.get(word) or words.setdefault(word, next(next_word))
        if len(feats) == 3:
            prefix, suffix = feats[1][2:], feats[2][2:]
            pid = prefixes.get(prefix) or prefixes.setdefault(prefix, next(next_prefix))
            sid = suffixes.get(suffix) or suffixes.setdefault(suffix, next(next_suffix))
            code |= (pid << _ID_BITS) | (sid << (2 * _ID_BITS))
        codes[token] = code
        return code

    def score(self, tokens: list[str]) -> tuple[float, int]:
        """Return (fsum of the weights of the distinct grams, number of distinct grams)."""
        if not tokens:
            return 0.0, 0
        tables = self._tables
        if len(tables[0]) > _MAX_UNSEEN_IDS:
            self._reset()
            tables = self._tables
        head = tokens[:NGRAM_TOKEN_CAP]
        codes = list(map(tables[0].get, head))
        if None in codes:
            codes = [c if c is not None else self._code(t, tables) for c, t in zip(codes, head, strict=True)]
        np = self._np
        packed = np.array(codes, dtype=np.int64)
        word_ids = packed & _ID_MASK
        grams = np.concatenate(
            (
                word_ids,
                ((packed >> _ID_BITS) & _ID_MASK) | _PREFIX_TAG,
                (packed >> (2 * _ID_BITS)) | _SUFFIX_TAG,
                ((word_ids[:-1] << _ID_BITS) | word_ids[1:]) | _PAIR_TAG,
            )
        )
        grams.sort()
        keep = np.empty(len(grams), dtype=bool)
        keep[0] = True
        np.not_equal(grams[1:], grams[:-1], out=keep[1:])
        distinct = grams[keep]
        at = self._codes.searchsorted(distinct)
        found = self._codes[at] == distinct
        count = len(distinct)
        if packed.min() <= _ID_MASK:
            # A word without affixes put prefix and suffix id 0 ("no affix") in: not grams.
            count -= 2
        return math.fsum(self._weights[at[found]].tolist()), count
