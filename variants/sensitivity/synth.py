"""Seeded generator of the labelled training corpus for the sensitivity model.

The project trains on data it makes itself: `generate(n, seed)` returns
`Example`s, about half sensitive (they disclose something about an
identifiable person) and half not. The negatives are deliberately hard:
general questions on the same topics, first-person prompts that disclose
nothing, invalid or example numbers, public figures, fiction, code without
secrets, and ordinary prompts with numbers in them.

Two families are built from the others: "bare" positives (a label and a
validated value, then any plain question: the value alone is sensitive) and
"redacted" negatives (a disclosing template with every value replaced by a
placeholder: the same context with nothing disclosed).

Every example records the template it came from, so the trainer can hold
out whole templates and measure generalisation to phrasings it never saw.
Noise (typos, casing, dropped punctuation, wrapping sentences) goes into
the template's literal text only, never into a value.
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from . import templates as T
from .values import Values


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int
    categories: tuple[str, ...]
    template: str
    family: str


class _Slots(dict):
    """Lazily generated template values; related values stay consistent."""

    def __init__(self, values: Values) -> None:
        super().__init__()
        self.v = values

    def __missing__(self, key: str) -> str:
        value = self._make(key)
        self[key] = value
        return value

    def _make(self, key: str) -> str:
        v, r = self.v, self.v.rng
        if key == "name":
            return v.full_name()
        if key == "name2":
            return v.full_name()
        if key == "first":
            return self["name"].split()[0]
        if key in ("fname",):
            return v.first_name()
        if key in ("lname",):
            return v.last_name()
        if key == "email":
            return v.email(self["name"])
        if key == "username":
            return self["name"].split()[0].lower() + v.digits(2)
        if key == "support_number":
            three, four = v.digits(3), v.digits(4)
            return v.choice((f"0800 {three} {four}", f"1-800-{three}-{four}", f"0345 {three} {four}"))
        if key == "phone":
            return v.phone()
        if key == "address":
            return v.address()
        if key == "street":
            name = v.choice(("Oak", "Main", "Elm", "Pine", "Maple", "Cedar", "Lake", "Hill"))
            return f"{name} {v.choice(('Street', 'Avenue', 'Road', 'Drive'))}"
        if key == "room":
            return str(r.randrange(2, 1800))
        if key == "gps":
            return v.gps()
        if key == "dob":
            return v.date_of_birth()
        if key == "dob_iso":
            return f"{r.randrange(1940, 2008)}-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}"
        if key == "date":
            return v.choice(("March 3", "12 May 2024", "2025-01-15", "next Friday", "June 30th",
                             "10/02/2024", "the 14th"))  # fmt: skip
        if key == "age":
            return str(r.randrange(19, 88))
        if key == "year":
            return str(r.randrange(2005, 2025))
        if key == "weeks":
            return str(r.randrange(6, 38))
        if key == "city":
            return v.choice(T.CITIES)
        if key == "relation":
            return v.choice(T.RELATIONS)
        if key == "relation_title":
            return v.choice(("Mother", "Father", "Wife", "Husband", "Sister", "Brother"))
        if key == "ssn":
            return v.ssn()
        if key == "ssn_nodash":
            return v.ssn(sep="")
        if key == "passport":
            return v.passport()
        if key == "nationality":
            return v.choice(T.NATIONALITIES)
        if key == "dl":
            return v.drivers_license()
        if key == "state":
            return v.choice(T.STATES)
        if key in ("tax_label", "tax"):
            label, value = v.tax_id()
            self["tax_label"], self["tax"] = label, value
            return self[key]
        if key == "nino":
            return v.nino()
        if key == "itin":
            return v.itin(sep=v.choice(("-", "-", "-", " ")))
        if key == "itin_label":
            return v.choice(("ITIN", "itin", "tax ID", "taxpayer ID", "TIN", "individual taxpayer number",
                             "tax id number"))  # fmt: skip
        if key == "insulin":
            return v.choice(T.INSULINS)
        if key == "units":
            return str(r.randrange(4, 60))
        if key == "regimen_unit":
            return v.choice(("units", "units", "mg", "puffs", "tablets", "mcg", "ml"))
        if key == "treatment":
            return v.choice(T.TREATMENTS)
        if key == "session_word":
            return v.choice(("round", "cycle", "session", "infusion", "treatment", "course"))
        if key == "ordinal":
            return v.choice(("first", "second", "third", "fourth", "fifth", "last", "final",
                             "2nd", "3rd", "4th", "6th", "next"))  # fmt: skip
        if key == "round_n":
            n = r.randrange(1, 8)
            self["round_m"] = str(n + r.randrange(0, 8))
            return str(n)
        if key == "round_m":
            self["round_n"]  # draws the pair
            return self["round_m"]
        if key == "sick_reason":
            return v.choice(T.SICK_REASONS)
        if key == "pct":
            return str(r.randrange(12, 70))
        # A quarter of these carry a wrong check digit: people mistype their own
        # numbers, and a labelled ID is a disclosure either way (unlike an SSN
        # the SSA never issues, which is a trap).
        if key == "sin":
            return v.sin() if r.random() < 0.75 else f"{v.digits(3)} {v.digits(3)} {v.digits(3)}"
        if key == "aadhaar":
            if r.random() < 0.75:
                return v.aadhaar()
            return f"{v.digits(4, True)} {v.digits(4)} {v.digits(4)}"
        if key == "nhs":
            return v.nhs_number() if r.random() < 0.75 else f"{v.digits(3)} {v.digits(3)} {v.digits(4)}"
        # Cards and IBANs too: a fifth fail their check (a mistyped digit), which the scan
        # reads as unverified unless the text asks about the number's validity.
        if key == "card":
            return v.card_number() if r.random() < 0.8 else v.invalid_card_number()
        if key == "exp":
            return v.expiry()
        if key == "cvv":
            return v.cvv()
        if key == "iban":
            return v.iban() if r.random() < 0.8 else v.invalid_iban()
        if key == "bic":
            return v.letters(4) + v.choice(("GB", "DE", "FR", "NL", "ES")) + v.alnum(2)
        if key == "routing":
            return v.routing_number()
        if key == "account":
            return v.account_number()
        if key == "sort":
            return v.sort_code()
        if key == "bank":
            return v.choice(T.BANKS)
        if key in ("money", "money2"):
            return v.money(5_000, 400_000)
        if key in ("money_small", "money_small2"):
            return v.money(40, 6_000)
        if key == "score":
            return str(r.randrange(420, 830))
        if key in ("condition", "condition2"):
            return v.choice(T.CONDITIONS)
        if key == "med":
            return v.choice(T.MEDICATIONS)
        if key == "dose":
            amount = v.choice((5, 10, 20, 25, 50, 100, 150, 200, 500, 1000))
            return f"{amount}{v.choice(('mg', ' mg', 'mg', 'mcg'))}"
        if key == "a1c":
            return f"{r.uniform(5.4, 11.5):.1f}"
        if key == "bp":
            return f"{r.randrange(100, 190)}/{r.randrange(60, 115)}"
        if key == "ldl":
            return str(r.randrange(90, 260))
        if key in ("password",):
            return v.password()
        if key in ("pin", "pin2"):
            return v.pin()
        if key in ("otp", "otp2", "otp3"):
            return v.otp()
        if key == "seed_phrase":
            words = ("apple", "river", "stone", "giant", "echo", "velvet", "orbit", "maple",
                     "lunar", "canvas", "tiger", "quartz", "harbor", "pixel", "ember", "solid")  # fmt: skip
            return " ".join(v.choice(words) for _ in range(12))
        if key == "sugar":
            return str(r.randrange(130, 320))
        if key == "api_key":
            return v.api_key()
        if key == "token":
            return v.generic_token()
        if key == "aws":
            return v.alnum(16, string.ascii_uppercase + string.digits)
        if key == "jwt":
            return v.jwt()
        if key == "pem":
            return v.private_key_block()
        if key == "pet_name":
            return v.choice(T.PET_NAMES)
        if key == "imei":
            value = v.imei()
            if r.random() < 0.2:  # a mistyped check digit, as with cards
                value = value[:-1] + str((int(value[-1]) + r.randrange(1, 10)) % 10)
            return value
        if key == "mac":
            return v.mac()
        if key == "serial":
            return v.serial()
        if key == "ip":
            return v.public_ip()
        if key == "vin":
            return v.vin()
        if key == "android_id":
            return v.android_id()
        if key == "job":
            return v.choice(T.JOBS)
        if key == "job_title":
            return v.choice(("Senior Analyst", "Project Manager", "Account Executive",
                             "Head of Operations", "Nurse Practitioner", "Paralegal"))  # fmt: skip
        if key == "employer":
            from .values import EMPLOYERS

            return v.choice(EMPLOYERS)
        if key == "order":
            return v.digits(r.randrange(5, 9), first_nonzero=True)
        if key == "invalid_ssn":
            return v.invalid_ssn()
        if key == "invalid_card":
            return v.invalid_card_number()
        if key == "test_card":
            return v.choice(("4242 4242 4242 4242", "4111 1111 1111 1111", "5555 5555 5555 4444",
                             "4000 0566 5566 5556", "3782 822463 10005"))  # fmt: skip
        if key == "example_iban":
            return v.choice(("GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00",
                             "NL91ABNA0417164300"))  # fmt: skip
        if key == "invalid_iban":
            return v.invalid_iban()
        if key == "company":
            from .values import COMPANY_WORDS

            return v.choice(COMPANY_WORDS)
        if key == "one_digit":
            return str(r.randrange(1, 10))
        if key == "two_digits":
            return f"{r.randrange(0, 100):02d}"
        if key == "three_digits":
            return str(r.randrange(100, 1000))
        if key == "four_digits":
            return str(r.randrange(1000, 10000))
        if key == "fin_topic":
            return v.choice(T.FIN_TOPICS)
        if key == "item":
            return v.choice(("laptop", "sofa", "used car", "bike", "camera", "phone plan",
                             "gym membership", "flight to Rome", "concert ticket"))  # fmt: skip
        if key == "celebrity":
            return v.choice(T.CELEBRITIES)
        if key == "famous_role":
            return v.choice(T.FAMOUS_ROLES)
        if key == "show":
            return v.choice(T.SHOWS)
        if key == "company":
            from .values import COMPANY_WORDS

            return v.choice(COMPANY_WORDS).capitalize() + v.choice((" Ltd", " Inc.", " LLC", " Group", ""))
        if key == "company_domain":
            from .values import COMPANY_WORDS

            return v.choice(COMPANY_WORDS) + v.choice((".com", ".co.uk", ".io", ".de"))
        if key == "role_mailbox":
            return v.choice(("info", "hello", "reception", "bookings", "enquiries", "media", "support"))
        if key == "letter":
            return v.choice(string.ascii_uppercase)
        if key == "hexsha":
            return "".join(v.choice("0123456789abcdef") for _ in range(v.choice((7, 40))))
        if key == "uuid":
            return str(uuid.UUID(int=r.getrandbits(128), version=4))
        if key == "alnum10":
            return v.alnum(10)
        if key in ("specialist", "test", "procedure", "finding"):
            pool = {"specialist": T.SPECIALISTS, "test": T.TESTS, "procedure": T.PROCEDURES,
                    "finding": T.FINDINGS}[key]  # fmt: skip
            return v.choice(pool)
        if key in ("specialist_cap", "test_cap", "condition_cap"):
            value = self[key.removesuffix("_cap")]
            return value[:1].upper() + value[1:]
        if key == "imei_spaced":
            digits = v.imei(formatted=False)
            sep = v.choice((" ", "-", " "))
            return sep.join((digits[:2], digits[2:8], digits[8:14], digits[14:]))
        if key == "mac_spaced":
            return " ".join(f"{r.randrange(256) & (0xFE if i == 0 else 0xFF):02X}" for i in range(6))
        if key == "example_mac":
            return v.choice(("00:1B:44:11:3A:B7", "01-23-45-67-89-AB", "00:00:5E:00:53:01"))
        raise KeyError(key)


# ---------------------------------------------------------------------------
# Noise applied to literal template text


_KEYBOARD_NEIGHBOURS = {
    "a": "qsz", "s": "adw", "d": "sfe", "e": "wrd", "r": "etf", "t": "ryg", "o": "ipl",
    "i": "uok", "n": "bmh", "m": "nj", "l": "kop", "c": "xvd", "u": "yij", "p": "ol",
}  # fmt: skip


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    near = _KEYBOARD_NEIGHBOURS.get(word[i].lower())
    if not near:
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice(near) + word[i + 1 :]


# Words people misspell in exactly the messages that matter ("pasword", "adress",
# "social securty", "diagnosd"); a sloppy message misspells them far more often than
# other words, so the model sees the cue words' typos, not only the filler's.
_CUE_WORDS = frozenset(
    {"password", "address", "social", "security", "diagnosed", "diabetes", "account", "number",
     "credit", "mortgage", "prescription", "medication", "license", "licence", "passport",
     "birthday", "phone", "email", "salary", "payment", "payments", "balance", "savings",
     "doctor", "surgery", "results", "insulin", "depression", "anxiety", "pregnant", "login",
     "username", "verification", "routing", "serial", "overdrawn", "collections", "therapist",
     "psychiatrist", "oncologist", "cardiologist", "biopsy", "chemo", "pension", "income",
     "bankruptcy", "behind", "loans", "debt", "card", "expiry", "birth", "mobile", "wifi",
     "combination", "keypad", "token", "secret", "device", "laptop", "tablet", "apartment",
     "units", "session", "round", "cycle", "sick", "kidney", "function", "taxpayer", "migraine",
     "radiation", "dialysis", "nephrologist", "injects", "infusion", "treatment"}
)  # fmt: skip


class _Style:
    """Per-example noise settings, drawn once so a message is consistently sloppy."""

    def __init__(self, rng: random.Random) -> None:
        self.typo_rate = rng.choice((0.0, 0.0, 0.0, 0.03, 0.06, 0.1))
        self.cue_typo_rate = rng.choice((0.0, 0.0, 0.0, 0.0, 0.35, 0.7))
        self.lower = rng.random() < 0.25
        self.upper = rng.random() < 0.02
        self.no_apostrophe = rng.random() < 0.12
        self.drop_final_punct = rng.random() < 0.2
        self.rng = rng

    def literal(self, text: str) -> str:
        rng = self.rng
        if self.typo_rate or self.cue_typo_rate:
            parts = text.split(" ")
            text = " ".join(
                _typo(p, rng)
                if rng.random() < self.typo_rate
                or (self.cue_typo_rate and p.lower() in _CUE_WORDS and rng.random() < self.cue_typo_rate)
                else p
                for p in parts
            )
        if self.no_apostrophe:
            text = text.replace("'", "")
        if self.lower:
            text = text.lower()
        elif self.upper:
            text = text.upper()
        return text


def _render(template: str, slots: _Slots, style: _Style) -> str:
    out: list[str] = []
    for literal, field_name, spec, conversion in string.Formatter().parse(template):
        if literal:
            out.append(style.literal(literal))
        if field_name is not None:
            value = slots[field_name]
            if conversion or spec:
                value = format(value, spec or "")
            out.append(value)
    text = "".join(out)
    if style.drop_final_punct and text and text[-1] in ".!?":
        text = text[:-1]
    return text


def _wrap(text: str, rng: random.Random, style: _Style) -> str:
    """Surround a message with neutral sentences, sometimes long ones."""
    roll = rng.random()
    if roll < 0.55:
        return text
    before: list[str] = []
    after: list[str] = []
    if roll < 0.75:
        (before if rng.random() < 0.5 else after).append(rng.choice(T.FILLERS))
    elif roll < 0.92:
        before.append(rng.choice(T.FILLERS))
        after.append(rng.choice(T.FILLERS))
    else:
        # Long context: the disclosure sits inside several hundred neutral characters.
        paragraph = rng.choice(T.LONG_FILLERS)
        if rng.random() < 0.5:
            before.append(paragraph)
        else:
            after.append(paragraph)
        if rng.random() < 0.5:
            after.append(rng.choice(T.LONG_FILLERS))
    sep = rng.choice((" ", " ", "\n", "\n\n"))
    pieces = [style.literal(p) for p in before] + [text] + [style.literal(p) for p in after]
    return sep.join(pieces)


# ---------------------------------------------------------------------------
# Compositional generators (many phrasings from small parts)

_REQUEST_SUFFIXES = (
    "",
    "",
    "",
    " What should I do?",
    " Can you help?",
    " Please advise.",
    " Draft a short reply for me.",
    " Keep it brief.",
    " Is that normal?",
    " Thanks!",
)
_GENERIC_VERBS = (
    "Explain",
    "Give me tips on",
    "Write a short guide to",
    "What are the basics of",
    "Summarize the key points of",
    "Create a checklist for",
    "Compare options for",
    "List common mistakes in",
    "How do people usually handle",
    "Write a blog intro about",
)
_GENERIC_TOPICS = (
    "managing {condition}",
    "side effects of {med}",
    "improving a credit score",
    "paying off student loans",
    "choosing a strong password",
    "setting up two-factor login",
    "protecting your SSN",
    "reading a bank statement",
    "finding your phone's IMEI",
    "changing a router's MAC filter",
    "budgeting on a low income",
    "mortgage refinancing",
    "talking to a doctor about {condition}",
    "saving for retirement",
    "spotting credit card fraud",
    "storing API keys securely",
    "rotating access tokens",
    "filing taxes as a freelancer",
    "caring for a parent with dementia",
    "mental health at work",
    "sleep hygiene",
    "making sourdough bread",
    "planning a road trip",
    "learning Rust",
    "writing unit tests",
    "negotiating rent",
    "training a puppy",
    "growing tomatoes",
    "public speaking",
)
_PERSONAL_PREFIXES = (
    "My friend asked me something and I didn't know:",
    "For a class I'm taking:",
    "I'm curious,",
    "Quick one:",
    "I'm writing an article:",
    "For my team's wiki:",
    "Asking for a school project:",
    "I was wondering,",
)


def _generic_topic_prompt(slots: _Slots, rng: random.Random) -> tuple[str, str]:
    verb_index = rng.randrange(len(_GENERIC_VERBS))
    topic_index = rng.randrange(len(_GENERIC_TOPICS))
    text = f"{_GENERIC_VERBS[verb_index]} {_GENERIC_TOPICS[topic_index]}."
    if rng.random() < 0.35:
        text = f"{rng.choice(_PERSONAL_PREFIXES)} {text[0].lower()}{text[1:]}"
    return text, f"neg:generic:{topic_index % 10}"


# ---------------------------------------------------------------------------
# Public API


# "IMEI: 35...", "Driver's license: D230-..." with a plain question after it:
# the validated value alone makes the message sensitive, whatever follows.
_BARE_LABELS: tuple[tuple[str, str, str], ...] = (
    ("IMEI", "imei", "device_id"), ("Driver's license", "dl", "government_id"),
    ("SSN", "ssn", "government_id"), ("Passport", "passport", "government_id"),
    ("Card", "card", "payment_card"), ("IBAN", "iban", "bank_account"),
    ("Phone", "phone", "phone"), ("Email", "email", "email"), ("Address", "address", "address"),
    ("DOB", "dob", "date_of_birth"), ("MAC", "mac", "device_id"), ("S/N", "serial", "device_id"),
    ("Password", "password", "credential"), ("API key", "api_key", "credential"),
    ("PIN", "pin", "credential"), ("Routing number", "routing", "bank_account"),
    ("NI number", "nino", "government_id"), ("Mobile", "phone", "phone"),
    ("acct", "account", "bank_account"), ("Account no.", "account", "bank_account"),
    ("my iban", "iban", "bank_account"), ("Bank details:", "iban", "bank_account"),
    ("Service tag", "serial", "device_id"), ("IMEI no", "imei_spaced", "device_id"),
    ("token", "token", "credential"), ("Door code", "pin", "credential"),
    ("Tax ID", "tax", "government_id"), ("Wifi key", "password", "credential"),
)  # fmt: skip
_BARE_QUESTIONS = (
    "",
    "",
    "How do I renew it online?",
    "Which one should I use?",
    "Is this format right?",
    "What do I do next?",
    "Can you check it?",
    "Where does this go on the form?",
    "Is it still valid?",
    "How do I update it?",
    "Which box is this?",
    "(for the form)",
)


def _templates() -> Iterator[tuple[str, int, tuple[str, ...], str, str]]:
    """Yield (template_id, label, categories, family, template) for every template."""
    for i, (label, slot, category) in enumerate(_BARE_LABELS):
        for sep in (": ", " "):
            yield f"pos:bare:{i}", 1, (category,), "pos:bare", f"{label}{sep}{{{slot}}}"
    for family, (categories, texts) in T.POSITIVE.items():
        for i, text in enumerate(texts):
            yield f"pos:{family}:{i}", 1, categories, f"pos:{family}", text
    for i, (categories, text) in enumerate(T.COMPOSITE):
        yield f"pos:composite:{i}", 1, categories, "pos:composite", text
    for family, texts in T.NEGATIVE.items():
        for i, text in enumerate(texts):
            yield f"neg:{family}:{i}", 0, (), f"neg:{family}", text


TEMPLATES: tuple[tuple[str, int, tuple[str, ...], str, str], ...] = tuple(_templates())

# Share of positives; among negatives, the weight of each family.
POSITIVE_SHARE = 0.5
_NEGATIVE_WEIGHTS = {
    "neg:topic_question": 3.0, "neg:first_person_no_data": 3.0, "neg:trap_invalid": 2.5,
    "neg:public_figure": 1.5, "neg:fiction": 1.0, "neg:code_no_secret": 1.5,
    "neg:numbers_not_pii": 2.0, "neg:ordinary": 2.0, "neg:generic": 2.5,
    "neg:money_context": 1.5, "neg:compositional": 3.0, "neg:redacted": 3.0,
    "neg:health_general": 2.0, "neg:finance_general": 1.5, "neg:personal_request": 2.5,
    "neg:trap_more": 3.0, "neg:business_contact": 1.0, "neg:document": 2.0,
}  # fmt: skip
# Share of positives rendered inside an organisational document (a disclosure buried in a
# long paste), so that a document's length and vocabulary say nothing by themselves.
DOCUMENT_POSITIVE_SHARE = 0.06


def _document(
    rng: random.Random, slots: _Slots, style: _Style, inserted: str | None = None
) -> tuple[str, str]:
    """(text, template id) of a request to edit 3 to 8 keyword-dense sentences about nobody.

    With ``inserted``, that text (a disclosure) takes the place of one sentence. The id
    names the first sentence drawn, so documents spread over the template split.
    """
    chosen = rng.sample(range(len(T.DOCUMENT_SENTENCES)), rng.randrange(3, 9))
    sentences = [_render(T.DOCUMENT_SENTENCES[k], slots, style) for k in chosen]
    if inserted is not None:
        sentences[rng.randrange(len(sentences))] = inserted
    bulleted = rng.random() < 0.5
    body = "\n".join(f"- {s}" for s in sentences) if bulleted else " ".join(sentences)
    text = style.literal(rng.choice(T.DOCUMENT_ASKS)) + rng.choice(("\n\n", "\n", " ")) + body
    return text, f"neg:document:{chosen[0]}"


def generate(n_examples: int, seed: int = 0) -> list[Example]:
    """Return `n_examples` labelled messages, deterministic for a seed."""
    rng = random.Random(seed)
    values = Values(rng)
    positives = [t for t in TEMPLATES if t[1] == 1]
    negatives_by_family: dict[str, list] = {}
    for t in TEMPLATES:
        if t[1] == 0:
            negatives_by_family.setdefault(t[3], []).append(t)
    neg_families = list(_NEGATIVE_WEIGHTS)
    neg_weights = [_NEGATIVE_WEIGHTS[f] for f in neg_families]
    # Families with many templates should not drown the others: pick a family first.
    pos_families: dict[str, list] = {}
    for t in positives:
        pos_families.setdefault(t[3], []).append(t)
    pos_family_names = sorted(pos_families)
    redactable = [t for t in positives if t[3] in _REDACTABLE_FAMILIES]

    examples: list[Example] = []
    for _ in range(n_examples):
        style = _Style(rng)
        slots = _Slots(values)
        if rng.random() < POSITIVE_SHARE:
            family = rng.choice(pos_family_names)
            template_id, label, categories, family, template = rng.choice(pos_families[family])
            text = _render(template, slots, style)
            if family == "pos:bare":
                text = (text + " " + style.literal(rng.choice(_BARE_QUESTIONS))).strip()
            if rng.random() < 0.3:
                text += style.literal(rng.choice(_REQUEST_SUFFIXES))
            if rng.random() < DOCUMENT_POSITIVE_SHARE:
                text = _document(rng, slots, style, inserted=text)[0]
            elif rng.random() < 0.15:
                # A second, different disclosure in the same message.
                other_id, _, other_categories, _, other = rng.choice(positives)
                text = text + rng.choice((" ", "\n", " Also, ")) + _render(other, slots, style)
                categories = tuple(sorted(set(categories) | set(other_categories)))
        else:
            family = rng.choices(neg_families, weights=neg_weights)[0]
            if family == "neg:generic":
                text, template_id = _generic_topic_prompt(slots, rng)
                text = style.literal(text)
            elif family == "neg:document":
                text, template_id = _document(rng, slots, style)
            elif family == "neg:compositional":
                text, template_id = _compositional_negative(rng, slots)
                text = style.literal(text)
            elif family == "neg:redacted":
                # The twin of a disclosing message with every value blanked out.
                template_id, _, _, _, template = rng.choice(redactable)
                text = _render(template, _RedactedSlots(values), style)
                template_id += ":redacted"
            else:
                template_id, label, categories, family, template = rng.choice(negatives_by_family[family])
                text = _render(template, slots, style)
            label, categories = 0, ()
        text = _wrap(text, rng, style)
        examples.append(Example(text, label, tuple(categories), template_id, family))
    return examples


def template_split(
    examples: list[Example], seed: int, test_fraction: float = 0.2
) -> tuple[list[int], list[int]]:
    """Split example indices so that no template appears on both sides."""

    # A redacted twin stays on the same side as the template it was made from.
    def group(example: Example) -> str:
        return example.template.removesuffix(":redacted")

    # Each template's side is a hash of its id and the seed, not a shuffle of the whole list,
    # so adding or removing a template leaves every other template on the side it was on (a
    # shuffle moved about a fifth of them and shifted the trained weights with every edit).
    template_ids = sorted({group(e) for e in examples})

    def draw(template_id: str) -> float:
        digest = hashlib.sha256(f"split-{seed}:{template_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    test_templates = {t for t in template_ids if draw(t) < test_fraction}
    if not test_templates:
        test_templates = {min(template_ids, key=draw)}
    train_idx = [i for i, e in enumerate(examples) if group(e) not in test_templates]
    test_idx = [i for i, e in enumerate(examples) if group(e) in test_templates]
    return train_idx, test_idx


# ---------------------------------------------------------------------------
# Contrast negatives: the same context with nothing disclosed


# Slots whose value discloses something; a redacted twin replaces them all.
_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "email": ("[email]", "<email address>", "[REDACTED]", "name@example.com", "xxx@xxx.com"),
    "phone": ("[phone]", "XXX-XXX-XXXX", "<phone number>", "[REDACTED]", "(XXX) XXX-XXXX"),
    "address": ("[address]", "<street address>", "[REDACTED]", "123 Main Street"),
    "gps": ("[location]", "<coordinates>", "XX.XXXX, YY.YYYY"),
    "dob": ("[date of birth]", "DD/MM/YYYY", "XX/XX/XXXX", "[REDACTED]"),
    "dob_iso": ("YYYY-MM-DD", "[dob]"),
    "ssn": ("XXX-XX-XXXX", "***-**-****", "[SSN]", "000-00-0000"),
    "ssn_nodash": ("XXXXXXXXX", "[SSN]"),
    "itin": ("9XX-XX-XXXX", "[ITIN]", "XXX-XX-XXXX"),
    "passport": ("[passport number]", "XXXXXXXXX", "<passport>"),
    "dl": ("[license number]", "XXXXXXX", "<DL number>"),
    "tax": ("[tax id]", "XX-XXXXXXX"),
    "nino": ("XX 00 00 00 X", "[NI number]"),
    "sin": ("XXX XXX XXX", "[SIN]"),
    "aadhaar": ("XXXX XXXX XXXX", "[Aadhaar]"),
    "nhs": ("XXX XXX XXXX", "[NHS number]"),
    "card": ("XXXX XXXX XXXX XXXX", "**** **** **** ****", "[card number]", "<card>"),
    "exp": ("MM/YY", "XX/XX"),
    "cvv": ("XXX", "***"),
    "iban": ("[IBAN]", "XX00 XXXX XXXX XXXX XXXX XX", "<iban>"),
    "routing": ("[routing number]", "XXXXXXXXX"),
    "account": ("[account number]", "XXXXXXXX"),
    "sort": ("XX-XX-XX", "[sort code]"),
    "bic": ("[BIC]", "XXXXXXXX"),
    "password": ("********", "[REDACTED]", "<your password>", "***", "[password]"),
    "pin": ("****", "[PIN]", "XXXX"),
    "pin2": ("****", "[code]"),
    "otp": ("XXXXXX", "[code]", "******"),
    "otp2": ("XXXXXX",),
    "otp3": ("XXXXXX",),
    "api_key": ("YOUR_API_KEY", "<api key>", "sk-...", "[REDACTED]", "${API_KEY}"),
    "token": ("<token>", "YOUR_TOKEN", "[REDACTED]", "${TOKEN}"),
    "jwt": ("<jwt>", "[token]", "eyJ..."),
    "pem": ("<private key omitted>", "[REDACTED KEY]"),
    "aws": ("XXXXXXXXXXXXXXXX",),
    "seed_phrase": ("[12 words omitted]", "<seed phrase>"),
    "imei": ("[IMEI]", "XXXXXXXXXXXXXXX", "<imei>"),
    "imei_spaced": ("[IMEI]", "XX XXXXXX XXXXXX X", "<imei>"),
    "mac_spaced": ("XX XX XX XX XX XX", "[MAC]"),
    "mac": ("XX:XX:XX:XX:XX:XX", "[MAC]", "00:00:00:00:00:00"),
    "serial": ("[serial]", "XXXXXXXX", "<serial number>"),
    "ip": ("x.x.x.x", "[IP]", "<ip address>"),
    "vin": ("[VIN]", "XXXXXXXXXXXXXXXXX"),
    "android_id": ("[device id]", "XXXXXXXXXXXXXXXX"),
    "name": ("[name]", "<customer name>", "John Doe", "Jane Doe", "[REDACTED]"),
    "name2": ("[name]", "Jane Doe"),
    "first": ("[name]", "there"),
    "username": ("[username]", "<user>"),
}
# Families whose disclosure is a value that can be blanked out.
_REDACTABLE_FAMILIES = frozenset(
    {"pos:email", "pos:phone", "pos:address", "pos:date_of_birth", "pos:government_id",
     "pos:payment_card", "pos:bank_account", "pos:credential", "pos:device_id",
     "pos:credential_implied"}
)  # fmt: skip


class _RedactedSlots(_Slots):
    def _make(self, key: str) -> str:
        placeholders = _PLACEHOLDERS.get(key)
        if placeholders is not None:
            return self.v.choice(placeholders)
        if key == "tax_label":
            return self.v.tax_id()[0]  # the label only; its value stays redacted
        return super()._make(key)


def _compositional_negative(rng: random.Random, slots: _Slots) -> tuple[str, str]:
    """Return (text, template_id) for a first-person or identifier prompt disclosing nothing."""
    kind = rng.randrange(3)
    if kind == 0:
        index = rng.randrange(len(T.IDENTIFIER_QUESTIONS))
        noun = rng.choice(T.IDENTIFIER_NOUNS)
        return T.IDENTIFIER_QUESTIONS[index].format(noun=noun), f"neg:identifier_question:{index}"
    if kind == 1:
        index = rng.randrange(len(T.EVERYDAY_PROBLEMS))
        text = (
            f"{rng.choice(T.EVERYDAY_SUBJECTS)} {T.EVERYDAY_PROBLEMS[index]}, {rng.choice(T.EVERYDAY_ASKS)}"
        )
        return text, f"neg:everyday:{index}"
    index = rng.randrange(len(T.PROFESSIONAL_TOPICS))
    text = (
        f"I'm a {rng.choice(T.PROFESSIONS)} and I need to explain {T.PROFESSIONAL_TOPICS[index]} "
        f"to {rng.choice(T.PROFESSIONAL_AUDIENCES)}. {rng.choice(('Keep it simple.', 'Any tips?', ''))}"
    ).strip()
    return text, f"neg:professional:{index}"
