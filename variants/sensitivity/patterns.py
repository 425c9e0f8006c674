"""Validated recognisers for personal and secret data in a prompt.

FIG. 2.3 step 242 (payload classification) needs evidence before a model
can weigh it; this module finds it. Every recogniser appends `Evidence`
(category, character span, recogniser kind, and whether the value was
validated) and bumps named *signals*, which the feature extractor turns
into model inputs. Check digits are verified where a format has them (Luhn
for cards and IMEIs, mod-97 for IBANs, the ABA checksum for routing
numbers, SSA rules for SSNs, mod-11 for NHS numbers, Verhoeff for Aadhaar),
because an invalid number is a keyword trap, not a disclosure.

Speed: Python's `re` costs tens of nanoseconds per character for a pattern
that cannot skip ahead on a literal first character, so a 2,000-character
prompt cannot afford forty full-text passes. Labels ("password is",
"date of birth", "my name is") are therefore found once, by looking up
token 1-4-grams in one phrase table; the value after a label is then read
with an anchored `.match()`. Full-text regexes are kept for values that
carry no label (e-mail, phone, card, IBAN, MAC, keys); each starts with a
character class and is gated on a cheap substring test.

Pure Python (stdlib only), no Django.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import re
import string
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate, compress, count
from operator import itemgetter
from typing import NamedTuple

from . import lexicon

CATEGORIES: tuple[str, ...] = (
    "person_name",
    "email",
    "phone",
    "address",
    "location",
    "date_of_birth",
    "government_id",
    "payment_card",
    "bank_account",
    "financial",
    "health",
    "credential",
    "device_id",
)

# Patterns run over at most this many characters; the rest of a longer
# text is not scanned (callers may treat such a prompt as sensitive).
SCAN_CAP_CHARS = 100_000


class Evidence(NamedTuple):
    """One finding; `strong` means a validated identifier, not a mere cue."""

    category: str
    start: int
    end: int
    kind: str
    strong: bool


@dataclass(slots=True)
class Scan:
    """Everything the recognisers found in one text."""

    text: str = ""
    lowered: str = ""
    # Whitespace-separated chunks of 16+ characters: the only places a key,
    # token or other high-entropy secret can be.
    long_chunks: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    signals: Counter[str] = field(default_factory=Counter)
    tokens: list[str] = field(default_factory=list)
    # Character offset of each token in `text`.
    token_starts: list[int] = field(default_factory=list)
    # Findings that wait for the person anchors or the public-figure spans.
    _pending_names: list[tuple[int, int, str]] = field(default_factory=list)
    _pending_topic: list[tuple[int, int, int, str]] = field(default_factory=list)
    _pending_money: list[tuple[int, int]] = field(default_factory=list)
    _pending_address: list[tuple[int, int]] = field(default_factory=list)
    # Values of a label that opens the text ("salary 85k, ...", "cibil score 682, ..."):
    # a terse statement about the writer, with no "I" or "my" to anchor it.
    _opening_values: list[int] = field(default_factory=list)
    numeric_tokens: list[int] = field(default_factory=list)
    number_starts: list[int] = field(default_factory=list)
    # Token positions and character spans of single-kind phrase hits (first
    # person words, relations, first names, landmarks, public figures, ...).
    kind_positions: dict[str, list[int]] = field(default_factory=dict)
    kind_spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # Where each legal form ("Zalando SE", "Ltda") ends; found on first use (`_company_form_ends`).
    company_form_ends: list[int] | None = None

    def add(self, category: str, start: int, end: int, kind: str, strong: bool) -> None:
        self.evidence.append(Evidence(category, start, end, kind, strong))
        self.signals[kind] += 1

    def spans(self) -> list[tuple[int, int]]:
        return [(e.start, e.end) for e in self.evidence]

    def locate_tokens(self) -> None:
        """Fill `token_starts`: each token is found in `lowered` after the previous one."""
        starts: list[int] = []
        append = starts.append
        find = self.lowered.find
        position = 0
        for token in self.tokens:
            found = find(token, position)
            if found < 0:  # cannot happen for tokens of `lowered`; stay monotonic regardless
                found = position
            append(found)
            position = found + len(token)
        self.token_starts = starts

    def token_end(self, index: int) -> int:
        return self.token_starts[index] + len(self.tokens[index])


# ---------------------------------------------------------------------------
# Check-digit validators


def luhn_valid(digits: str) -> bool:
    """Return True when a digit string passes the Luhn (mod 10) check."""
    if not digits or not digits.isdigit():
        return False
    backwards = digits[::-1]
    # Every second digit from the right is doubled, its digits summed (_LUHN_DOUBLED).
    total = sum(map(int, backwards[::2])) + sum(map(_LUHN_DOUBLED.__getitem__, map(int, backwards[1::2])))
    return total % 10 == 0


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


# ISO 13616 IBAN lengths by country.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """Return True for an IBAN of its country's length that passes mod-97."""
    compact = iban.replace(" ", "").upper()
    if len(compact) < 5 or not compact.isascii() or not compact.isalnum():
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is None or len(compact) != expected or not compact[2:4].isdigit():
        return False
    remainder = 0
    for char in compact[4:] + compact[:4]:
        # Letters count as two digits (A=10 .. Z=35); fold them in as we go.
        if char.isdigit():
            remainder = (remainder * 10 + int(char)) % 97
        else:
            remainder = (remainder * 100 + ord(char) - 55) % 97
    return remainder == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Return True when an SSN could have been issued (SSA rules since 2011)."""
    if not (len(area) == 3 and len(group) == 2 and len(serial) == 4):
        return False
    if not (area + group + serial).isdigit():
        return False
    if area in ("000", "666") or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


def itin_valid(area: str, group: str, serial: str) -> bool:
    """Return True for an IRS individual taxpayer number's shape: 9XX, group 50-65, 70-88, 90-92 or 94-99."""
    if not (len(area) == 3 and len(group) == 2 and len(serial) == 4):
        return False
    if not (area + group + serial).isdigit() or area[0] != "9":
        return False
    g = int(group)
    return 50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99


def aba_routing_valid(digits: str) -> bool:
    """Return True for a 9-digit US routing number with a correct ABA checksum."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    d = [int(c) for c in digits]
    total = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    return total % 10 == 0


def nhs_number_valid(digits: str) -> bool:
    """Return True for a 10-digit NHS number with a correct mod-11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    check = 11 - sum(int(c) * (10 - i) for i, c in enumerate(digits[:9])) % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6), (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4), (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)  # fmt: skip
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2), (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)  # fmt: skip


def verhoeff_valid(digits: str) -> bool:
    """Return True when a digit string passes the Verhoeff check (Aadhaar)."""
    if not digits or not digits.isdigit():
        return False
    check = 0
    for i, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(char)]]
    return check == 0


def shannon_entropy_bits(value: str) -> float:
    """Return the per-character Shannon entropy of a string, in bits."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def card_network(digits: str) -> str | None:
    """Return the card network that an IIN prefix and length belong to, or None."""
    n = len(digits)
    if n < 12 or not digits.isdigit():
        return None
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if n == 16 and (51 <= two <= 55 or 2221 <= four <= 2720):
        return "mastercard"
    if n == 15 and two in (34, 37):
        return "amex"
    if n in (16, 19) and (four == 6011 or two == 65 or 644 <= three <= 649):
        return "discover"
    if 16 <= n <= 19 and 3528 <= four <= 3589:
        return "jcb"
    if n == 14 and two in (30, 36, 38, 39):
        return "diners"
    if 16 <= n <= 19 and two == 62:
        return "unionpay"
    if two == 50 or 56 <= two <= 69:
        return "maestro"
    return None


# Published sandbox card numbers: a keyword trap, not a card.
TEST_CARD_NUMBERS: frozenset[str] = frozenset(
    {
        "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556",
        "4222222222222", "4000000000000002", "4000000000009995", "4000000000000077",
        "5555555555554444", "5105105105105100", "5200828282828210", "2223003122003222",
        "378282246310005", "371449635398431", "378734493671000", "6011111111111117",
        "6011000990139424", "3530111333300000", "3566002020360505", "30569309025904",
        "38520000023237", "6200000000000005", "4000002500003155", "4000000000003220",
        "4000002760003184", "4000003800000446", "4000000000000341", "4000000000009979",
        "4000000000009987", "4000000000000069", "4000000000000127", "4000000000000119",
        "4000000000000101", "4000000000000036",
    }
)  # fmt: skip

# IBANs printed in standards and bank documentation.
EXAMPLE_IBANS: frozenset[str] = frozenset(
    {"GB82WEST12345698765432", "DE89370400440532013000", "GB29NWBK60161331926819",
     "FR1420041010050500013M02606", "NL91ABNA0417164300", "GB33BUKB20201555555555"}
)  # fmt: skip

# SSNs known from advertising and textbooks.
EXAMPLE_SSNS: frozenset[str] = frozenset({"123456789", "078051120", "219099999", "111223333"})

# ---------------------------------------------------------------------------
# Tokens and the phrase table

_TOKEN_RE = re.compile(r"\w+(?:['’\-]\w+)*")
_TOKEN_SPLIT_RE = re.compile("(" + _TOKEN_RE.pattern + ")")
# The same tokens with underscores as separators ("db_password" -> "db", "password").
_SCAN_TOKEN_SPLIT_RE = re.compile(r"([^\W_]+(?:['’\-][^\W_]+)*)")
_MAX_PHRASE = 4

_FIRST_PERSON = frozenset(
    {"i", "i'm", "im", "i've", "ive", "i'd", "i'll", "me", "my", "mine", "myself", "we",
     "we're", "we've", "we'll", "we'd", "our", "ours", "us", "ourselves",
     # the writer in the other languages people type to the gateway
     "tengo", "estoy", "padezco", "sufro", "je", "j'ai", "moi", "ich", "mein", "meine",
     "meinen", "meiner", "ik", "mijn", "meu", "minha",
     "tenho", "ganho", "meri", "mera", "mujhe", "mujhko", "moja", "moje", "mój", "benim",
     # verbs that can only be the writer's: "gano 1.850 euros", "ich verdiene", "je prends"
     "gano", "debo", "verdiene", "gagne", "guadagno", "prends", "nehme",
     # Tagalog, Indonesian and Malay, Arabic, Turkish (words with the writer's own suffix)
     "ako", "aking", "saya", "aku", "أنا", "انا", "إني", "اني", "ben", "maaşım", "borcum", "gelirim",
     "kiram"}
)  # fmt: skip
_POSSESSIVES = frozenset(
    {"my", "our", "his", "her", "their", "your",
     # the writer's, in the other languages people type to the gateway
     "mi", "mis", "mon", "ma", "mes", "meu", "minha", "meus", "minhas", "mein", "meine", "meinem",
     "meinen", "meiner", "meines", "mio", "mia", "miei", "mie", "nuestra", "nuestro", "notre",
     "nos", "nosso", "nossa", "unser", "unsere", "moja", "mój", "moje", "mijn", "onze"}
)  # fmt: skip
_RELATIONS = frozenset(lexicon.RELATION_WORDS)
_FIRST_NAMES = frozenset(lexicon.FIRST_NAMES)
_THIS_YEAR = datetime.date.today().year
_FOUR_DIGITS_RE = re.compile(r"(?<!\d)\d{4}(?!\d)")
_COMMON = lexicon.COMMON_WORDS
# Words that end a name candidate's chance: common words that are not also first names.
_NAME_STOP = _COMMON - _FIRST_NAMES
# Words that cannot be part of a street name ("3 more days", "5 minutes walk").
_STREET_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "to",
        "in",
        "for",
        "with",
        "and",
        "or",
        "at",
        "on",
        "by",
        "from",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "this",
        "that",
        "these",
        "those",
        "is",
        "are",
        "was",
        "were",
        "be",
        "it",
        "i",
        "we",
        "you",
        "they",
        "more",
        "most",
        "other",
        "than",
        "per",
        "about",
        "over",
        "under",
        "minutes",
        "hours",
        "days",
        "weeks",
        "months",
        "years",
        "times",
        "people",
        "items",
        "steps",
        "miles",
        "km",
        "kilometers",
        "meters",
        "feet",
        "percent",
        "dollars",
        "euros",
        "pounds",
        "kids",
        "children",
        "points",
    ]
)
_ANCHOR_WINDOW_TOKENS = 12


def _phrase_key(phrase: str) -> str:
    return " ".join(_TOKEN_RE.findall(phrase.lower().replace("’", "'")))


# Label phrase -> kinds. A kind names the recogniser that reads the value
# after the label, or a topic/cue signal counted on its own.
_PHRASES: dict[str, list[str]] = {}


def _register(kind: str, phrases: tuple[str, ...] | list[str]) -> None:
    for phrase in phrases:
        key = _phrase_key(phrase)
        if key and len(key.split()) <= _MAX_PHRASE:
            kinds = _PHRASES.setdefault(key, [])
            if kind not in kinds:
                kinds.append(kind)


_register(
    "health_term",
    lexicon.HEALTH_CONDITIONS + lexicon.HEALTH_MEDICATIONS + lexicon.HEALTH_TREATMENTS
    + lexicon.SICK_LEAVE_PHRASES,
)  # fmt: skip
_register("clinical_term", lexicon.HEALTH_CLINICAL)
_register("finance_term", lexicon.FINANCIAL_TERMS)
# "Taylor Swift's birthday": the possessive is one token, so it is listed too.
_register("public_figure", [*lexicon.PUBLIC_FIGURES, *(f"{name}'s" for name in lexicon.PUBLIC_FIGURES)])
_register("example_cue", lexicon.EXAMPLE_CUES)
_register("public_cue", lexicon.PUBLIC_CONTEXT_CUES)
_register("l:password", (
    "password", "passwort", "passwd", "pwd", "pword", "pasword", "passwrd", "passw", "passcode",
    "passowrd", "passwrod", "pssword", "paswword", "passord", "pasword's",
    "passphrase", "pass phrase", "wifi password", "wi-fi password", "wifi key", "wifi pass",
    "network key", "pw", "login password", "master password", "admin password",
    "root password", "mot de passe", "contraseña", "contrasena", "passwort ist",
    "senha", "minha senha", "şifre", "şifrem", "sifre", "sifrem", "hasło", "haslo", "moje hasło",
    "wachtwoord", "lösenord", "losenord", "adgangskode", "salasana", "parola", "kennwort",
    "wlan-passwort", "wlan passwort", "wifi-passwort", "wlan-schlüssel", "wlan schlüssel",
    "router-passwort", "e-mail-passwort", "email-passwort", "admin-passwort", "root-passwort",
    "router-password", "wifi-password", "wi-fi-password", "admin-password", "email-password",
    "psk", "wpa_passphrase", "wpa-psk", "пароль", "пароль от", "мой пароль", "كلمة المرور", "كلمة السر",
    "密码",
))  # fmt: skip
# "wifi at the lake house is Birchwood_Guest!22": a network's key without the word
# password, read only when it has a password's shape (not "the wifi is down").
_register("l:wifi", ("wifi", "wi-fi", "wifi network", "guest wifi", "wlan", "wifi code"))
# "pass: Falcon$Eye71": "pass" is too common a word for anything but a
# separator followed by a password-shaped value.
_register("l:pass_short", ("pass", "pw", "pwd", "pass word"))
_register("l:pin", (
    "pin", "pin code", "pin number", "pin no", "atm pin", "card pin", "sim pin", "puk",
    "door code", "gate code", "alarm code", "lock code", "lockbox code", "safe code",
    "combination", "garage code", "keypad code", "entry code", "building code", "keypad",
    "door keypad", "combo", "lock combo", "lock combination", "padlock code", "locker code",
    "padlock combination", "key safe code", "key box code", "unlock code", "phone passcode",
    "pincode", "pin-code", "código pin", "code pin", "pin kodu", "kod pin",
))  # fmt: skip
_register("l:otp", (
    "otp", "2fa", "mfa", "one time code", "one-time code", "one time password",
    "one-time password", "one time passcode", "one-time passcode", "one-time pin",
    "verification code", "verify code", "auth code", "authentication code",
    "authenticator code", "login code", "sign in code", "sign-in code", "signin code",
    "confirmation code", "access code", "backup code", "backup codes", "recovery code",
    "recovery codes", "code", "codes", "security code",
    "code de confirmation", "code de vérification", "code de verification", "code de sécurité",
    "código de verificación", "código de confirmación", "código de verificação", "código de segurança",
    "bestätigungscode", "sicherheitscode", "verifizierungscode", "codice di verifica", "codice otp",
    "codice di sicurezza", "kod weryfikacyjny", "kod sms", "verificatiecode", "beveiligingscode",
))  # fmt: skip
_register("l:secret", (
    "api key", "apikey", "api secret", "api token", "secret key", "secret", "access key",
    "access key id", "client secret", "auth token", "access token", "refresh token", "bearer",
    "token", "private key", "webhook secret", "signing key", "app secret", "session id",
    "session token", "session cookie", "cookie", "consumer secret", "license key",
    "licence key", "product key", "recovery key", "recovery phrase", "seed phrase",
    "mnemonic", "secret access key", "personal access token", "pat",
))  # fmt: skip
_register("l:imei", ("imei", "imei number", "imei no", "imei1", "imei2", "meid", "esn"))
_register("l:serial", (
    "serial", "serial number", "serial no", "serial num", "s n", "sn", "service tag", "imsi",
    "iccid", "udid", "android id", "device id", "deviceid", "advertising id", "idfa", "gaid",
    "idfv", "hardware id", "hwid", "machine id", "vin", "chassis number", "device serial",
    "seriennummer", "serienummer", "numer seryjny", "numéro de série", "número de serie",
    "número de série", "numero di serie", "seri numarası", "chassisnummer", "fahrgestellnummer",
    "chassinummer", "numer vin", "numer nadwozia", "frame number", "frame no", "frame serial",
    "engine number", "ad id", "advertising identifier", "unit id", "rahmennummer",
    "numéro de cadre", "número de cuadro", "número do quadro", "telaio",
))  # fmt: skip
_register("l:gov", (
    "passport", "passport number", "passport no", "driver's license", "drivers license",
    "driver license", "driver's licence", "drivers licence", "driving licence",
    "driving license", "license number", "licence number", "license no", "licence no", "dl",
    "dln", "ein", "fein", "tax id", "tax number", "tax identification number", "tin", "itin",
    "utr", "nif", "nie", "dni", "cpf", "curp", "rfc",
    "steuer-id", "steuer id", "steuernummer", "steuer-identifikationsnummer", "national id",
    "national identity number", "national insurance number", "national insurance",
    "ni number", "id number", "id card number", "id no", "identity card", "personalausweis",
    "social insurance number", "pan card", "pan number", "voter id", "medicare number",
    "health card number", "green card", "alien number", "a-number", "uscis number",
    "residence permit", "bsn", "pesel", "codice fiscale", "nric", "fin number", "hkid",
    "mykad", "tfn", "tax file number", "ird number", "personnummer", "cnp", "member id",
    "insurance id", "policy number", "state id", "license plate", "licence plate",
    "number plate", "plate number", "registration number", "reg number", "tag number",
    "pps", "pps no", "pps number", "ppsn", "numéro de sécu", "numero de secu", "numéro de sécurité sociale",
    "sécurité sociale", "securite sociale", "carte vitale", "nir", "nie number", "dni number",
    "número de identificación", "sozialversicherungsnummer", "svnr", "ahv", "burgerservicenummer",
    "personal number", "tc kimlik", "kimlik no", "nino",
))  # fmt: skip
_register("l:gov_nhs", ("nhs number", "nhs no", "nhs"))
# "my florida license D412-778-39-902-1": the bare word needs a licence-shaped value after it.
_register("l:license", ("license", "licence", "lic"))
# A VAT number belongs to a business: read past its value so it is taken for nothing else.
_register("l:vat", ("vat number", "vat no", "vat id", "vat reg", "vat registration number"))
_register("l:mrn", (
    "mrn", "medical record number", "patient id", "patient number", "chart number", "nhc",
    "historia clínica", "n.º de historia", "patientennummer", "numéro de dossier", "cartella clinica",
))  # fmt: skip
_register(
    "l:gov_aadhaar", ("aadhaar", "aadhar", "aadhaar number", "aadhar number", "uidai", "आधार", "आधार नंबर")
)
_register("l:gov_sin", ("sin", "sin number", "social insurance number"))
_register("l:ssn_ctx", (
    "ssn", "ss", "social security", "social security number", "social", "socsec", "tin",
    "itin", "taxpayer",
))  # fmt: skip
_register("l:routing", ("routing", "routing number", "routing no", "aba", "rtn", "transit number"))
_register("l:account", (
    "account", "acct", "a c", "acc", "account number", "account no", "bank account",
    "checking", "savings", "checking account", "savings account", "acct no", "account num",
    "numer konta", "nr konta", "numer rachunku", "nr rachunku", "kontonummer", "numéro de compte",
    "número de cuenta", "numero di conto", "número da conta", "rekeningnummer",
))  # fmt: skip
_register("l:sort_code", ("sort code", "sortcode", "bsb"))
_register("l:swift", ("swift", "bic", "swift code", "bic code", "swift bic"))
_register("l:dob", (
    "born", "dob", "d o b", "date of birth", "birth date", "birthdate", "birthday", "b-day",
    "bday", "birth day", "birthday's", "bday's", "geboren", "né", "née", "fecha de nacimiento",
    "nacimiento",
    "date de naissance", "born on", "geburtsdatum", "data di nascita", "data de nascimento",
    "data urodzenia", "geboortedatum", "fødselsdato", "födelsedatum", "doğum tarihi",
    "doğum tarihim", "dogum tarihim", "nascido em", "nacido el", "nacida el", "urodzony", "urodzona",
    "nací", "naci", "nací el", "nasci", "nasci em", "né le", "née le", "sono nato", "sono nata",
    "nato il", "nata il", "geb",
))  # fmt: skip
_register("l:birth_year", ("born in", "birth year", "year of birth", "yob", "born"))
_register("l:cvv", ("cvv", "cvv2", "cvc", "cvc2", "csc", "security code", "card security code"))
_register("l:expiry", (
    "exp", "expiry", "expires", "expiration", "exp date", "expiration date", "expiry date",
    "valid thru", "valid through", "expiring",
))  # fmt: skip
_register("l:last4", (
    "ending in", "ending", "ends in", "last four", "last 4", "last four digits", "last 4 digits",
))  # fmt: skip
_register("l:credit_score", (
    "credit score", "fico", "fico score", "credit rating", "schufa", "cibil", "credit scores",
    "my credit", "credit dropped", "credit went", "credit is", "my score", "experian", "equifax",
    "transunion", "credit karma", "creditkarma", "clearscore", "credit sesame",
))  # fmt: skip
_register("l:health_value", (
    "a1c", "hba1c", "blood sugar", "glucose", "blood pressure", "bp", "ldl", "hdl",
    "cholesterol", "triglycerides", "psa", "tsh", "t4", "viral load", "cd4", "bmi",
    "heart rate", "resting heart rate", "spo2", "white count", "wbc", "hemoglobin", "hgb",
    "platelets", "creatinine", "egfr", "ferritin", "vitamin d", "b12", "inr", "sats",
    "blood glucose", "fasting glucose", "sugar level", "sugar levels", "ejection fraction",
    "sugar", "my sugar", "sugars", "fasting sugar", "hemoglobina", "hämoglobin", "hémoglobine",
    "glicemia", "glucemia", "blutzucker", "hcg", "beta hcg", "hcg level", "hcg levels",
))  # fmt: skip
_register("l:currency", ("usd", "eur", "gbp", "cad", "aud", "chf", "inr", "rs", "jpy", "sek"))
_register("l:name_intro", (
    "my name is", "my name's", "name's", "name is", "i am", "i'm", "im", "this is", "it's",
    "call me", "my full name is", "i go by", "known as", "me llamo", "je m'appelle",
    "ich heiße", "ich bin", "mera naam", "meu nome é", "meu nome e", "mi nombre es", "mi chiamo",
))  # fmt: skip
_register("l:name_field", (
    "full name", "first name", "last name", "surname", "given name", "name", "patient",
    "patient name", "customer", "customer name", "client", "client name", "employee",
    "employee name", "applicant", "account holder", "account name", "cardholder",
    "card holder", "name on card", "beneficiary", "tenant", "recipient", "attn",
    "attention", "contact person", "emergency contact", "next of kin", "guarantor",
    "policyholder", "insured", "member name", "student name", "passenger", "guest", "from",
    "to", "signed", "owner", "resident", "candidate", "nombre", "nom",
))  # fmt: skip
_register("l:title", (
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "mme", "mlle", "herr",
    "frau", "sr", "sra", "srta", "dott",
))  # fmt: skip
_register("l:greeting", (
    "dear", "hi", "hello", "hey", "hiya", "good morning", "good afternoon", "good evening",
))  # fmt: skip
_register("l:signoff", (
    "regards", "thanks", "thank you", "cheers", "sincerely", "best", "best wishes",
    "kind regards", "warm regards", "many thanks", "yours truly", "yours", "love", "xoxo",
    "signed", "sent by", "rgds", "thx", "ta", "warmly", "respectfully", "best regards",
))  # fmt: skip
_register("l:address_cue", (
    "my address", "home address", "mailing address", "billing address", "shipping address",
    "h.no", "h no", "house no", "door no", "d.no", "flat no", "plot no",
    "delivery address", "address is", "ship to", "ship it to", "deliver to", "deliver it to",
    "send it to", "send them to", "forward mail to", "moved to", "living at", "lives at",
    "reside at", "residing at", "postal address", "street address", "my new address",
    "our address", "his address", "her address", "their address", "mail it to",
    "addy", "addy is", "my addy", "addr", "addr is",
    "address to", "address as", "address from", "addresses to", "statement sent to",
    "return to", "sent to", "mail to", "update my address", "change my address",
    "correspondence address", "permanent address", "residential address", "new address",
    "your address",
    "vivo en", "vivimos en", "vivo na", "vivo no", "moro na", "moro no", "moro em", "j'habite",
    "j'habite au", "j'habite à", "ich wohne in der", "wohne in der", "abito in", "abito a",
    "i live at", "we live at", "mi dirección es", "mi direccion es", "meine adresse",
    "mon adresse", "il mio indirizzo", "meu endereço", "mój adres", "moje adres",
))  # fmt: skip
_register("location_cue", (
    "my home", "my house", "my flat", "my apartment", "my place", "my current location",
    "my location", "my gps", "my coordinates", "current location", "live location",
    "pick me up at", "pick me up from", "meet me at", "i'm currently at", "im at", "i'm at",
    "my kid's school", "my kids school", "my son's school", "my daughter's school",
    "my office is", "our house", "our home", "our flat", "my hotel", "my room number",
    "room number", "i'm staying at", "we're staying at", "parked at", "i'm outside",
    "my gate", "my building", "my street", "live next to", "live next door",
))  # fmt: skip
_register("l:age", ("i'm", "i am", "im", "age", "aged", "he's", "she's", "turned", "turning"))
_register("l:unit", (
    "apt", "apartment", "unit", "suite", "ste", "flat", "fl", "floor", "room", "rm", "bldg",
    "building", "piso", "étage", "house number", "house no",
))  # fmt: skip
_GERMAN_MARKERS = frozenset(
    {"ist", "und", "der", "die", "das", "nicht", "ich", "zu", "wie", "mit", "ein", "eine", "auf",
     "für", "sich", "auch", "oder", "wenn", "noch", "bei", "vom", "zum", "dem", "den"}
)  # fmt: skip
_ROOM_LABELS = frozenset({"room", "rm", "floor", "fl", "building", "bldg", "étage"})
_register("l:romance_street", (
    "rue", "avenue", "av", "boulevard", "bd", "chemin", "allée", "impasse", "quai", "calle",
    "avenida", "avda", "paseo", "plaza", "carrer", "via", "viale", "piazza", "piazzale",
    "corso", "largo", "rua", "rúa", "travessa", "praça", "ul", "ulica", "aleja", "strada",
    "calea", "utca", "út", "ut", "cesta", "ulitsa", "sokak", "caddesi",
    "route de", "place de", "place du",
))  # fmt: skip
_register("l:login", (
    "login", "log in", "login details", "login for", "credentials", "creds", "user/pass",
    "username and password", "username/password", "user and pass", "sign in", "account login",
))  # fmt: skip
_register("l:med_context", (
    "take my", "taking my", "refill my", "refill of", "prescription for", "prescribed",
    "started on", "started me on", "been on", "put me on", "put him on", "put her on",
    "upped my", "lowered my", "dose of", "my dose", "stopped taking", "switched to",
    "weaning off", "withdrawal from",
))  # fmt: skip
_register("l:name_verb", (
    "letter to", "email to", "message to", "note to", "text to", "reminder to", "reply to",
    "write to", "remind", "tell", "ask", "invite", "thank", "congratulate", "introduce",
    "fire", "hire", "pay", "cc", "forward to", "send to", "meeting with", "call with",
    "married to", "engaged to", "dating", "divorcing", "named", "called",
))  # fmt: skip
_register("l:employer_cue", (
    "work at", "works at", "work for", "works for", "worked at", "employed at", "employed by",
    "job at", "i work as", "works as", "my employer", "my company", "my manager at",
    "my school", "student at", "studying at", "our company", "from work",
))  # fmt: skip
_register("l:money_label", (
    "gross", "net", "salary", "salary is", "paid", "earn", "earns", "make", "makes", "income",
    "paycheck", "paycheque", "wage", "wages", "rent", "owe", "owes", "balance", "debt",
    "savings", "bonus", "pension", "take home", "take-home", "in hand", "ctc", "gehalt", "lohn",
    "nettogehalt", "bruttogehalt", "salaire", "sueldo", "salario", "stipendio", "renda", "salário",
    "verdiene", "ich verdiene", "je gagne", "gagne", "gano", "guadagno", "ganho", "zarabiam",
    "base", "base pay", "base salary", "net pay", "gross pay", "payslip", "paystub", "pay stub",
    "payslip shows", "currently at", "currently make", "currently earn", "net worth",
    "netted", "cleared", "took home", "brought home", "bring home", "take-home pay",
    "pays me", "pay me", "paying me", "get paid", "gets paid", "maaşım", "maaş", "borcum", "borç",
    "gelirim", "kiram",
    "salaire de base", "salaire net", "salaire brut", "net à payer", "net a payer", "sueldo base",
    "sueldo neto", "sueldo bruto", "stipendio netto", "stipendio lordo", "nettolohn", "bruttolohn",
    "grundgehalt", "auszahlungsbetrag", "salário base", "salário líquido", "wynagrodzenie",
))  # fmt: skip
# Single tokens whose positions several recognisers need; the phrase table
# finds them in the same pass as everything else.
_register("fp", sorted(_FIRST_PERSON))
_register("rel", lexicon.RELATION_WORDS)
# "Mom's only income is ...", "husband's sleep study came back ...": a family member's, named
# by the possessive alone.
_FAMILY_WORDS = (
    "mom", "mum", "mother", "dad", "father", "wife", "husband", "son", "daughter", "brother", "sister",
    "grandma", "grandpa", "grandmother", "grandfather", "partner", "boyfriend", "girlfriend", "fiance",
    "fiancee", "baby", "kid", "toddler", "aunt", "uncle", "nan", "nana", "granny",
)  # fmt: skip
_register("rel_possessive", [f"{word}'s" for word in _FAMILY_WORDS])
_register("first_name", lexicon.FIRST_NAMES)
_STREET_ABBREVIATIONS = {
    "street": ("st",), "avenue": ("ave", "av"), "road": ("rd",), "boulevard": ("blvd",),
    "drive": ("dr",), "lane": ("ln",), "place": ("pl",), "parkway": ("pkwy",), "terrace": ("ter",),
}  # fmt: skip


def _landmark_spellings(addresses: tuple[str, ...]) -> list[str]:
    """Each landmark address as written and with its street suffix abbreviated
    ("1600 pennsylvania avenue" and "1600 pennsylvania ave")."""
    out = []
    for address in addresses:
        out.append(address)
        head, _, suffix = address.rpartition(" ")
        out += [f"{head} {short}" for short in _STREET_ABBREVIATIONS.get(suffix, ())]
    return out


_register("landmark", _landmark_spellings(lexicon.LANDMARK_ADDRESSES))
_register("locverb", (
    "live", "living", "lives", "reside", "residing", "staying", "stay", "located", "based",
    "moved", "parked", "sleeping", "hiding", "stuck", "waiting", "sitting", "standing",
    "stranded", "trapped", "camping",
))  # fmt: skip
_register("l:profession_intro", ("i'm a", "i am a", "i'm an", "i am an", "as a", "work as a", "we are a"))
_register("years_old", ("years old", "year old", "yrs old", "year-old", "years-old", "yo", "y o"))


def _typo_variants(word: str) -> set[str]:
    """Return `word` with one letter dropped, doubled, or swapped with its neighbour."""
    variants = {word[:i] + word[i + 1 :] for i in range(len(word))}
    variants |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    variants |= {word[: i + 1] + word[i:] for i in range(len(word))}
    variants.discard(word)
    return variants


def _register_typos(single_minimum: int = 6, phrase_word_minimum: int = 5) -> None:
    """Register one-edit misspellings of cue words under the same kinds.

    "pasword", "diabeets", "mortage" then read like the real word, and so do
    phrases with one misspelt word ("pin numbr", "social securty", "date of brith").
    Built once into the phrase table, so a lookup costs nothing more. Variants
    that are words themselves (or other cues) are skipped; in a phrase (labels
    only) one word at a time is misspelt, and only words of `phrase_word_minimum`
    letters or more.
    """
    known = set(_PHRASES)
    for key, kinds in list(_PHRASES.items()):
        wanted = [k for k in kinds if k in _TYPO_KINDS]
        if not wanted:
            continue
        words = key.split()
        if len(words) > 1:
            # Misspelt phrases only for labels: topic phrases are many, and their
            # single words already carry typo variants.
            wanted = [k for k in wanted if k[:2] == "l:"]
            if not wanted:
                continue
        if len(words) == 1:
            if len(key) < single_minimum or not key.isalpha():
                continue
            variants = _typo_variants(key)
        else:
            variants = set()
            for k, word in enumerate(words):
                if len(word) < phrase_word_minimum or not word.isalpha():
                    continue
                for variant in _typo_variants(word):
                    if variant not in _COMMON and variant not in _FIRST_NAMES:
                        variants.add(" ".join([*words[:k], variant, *words[k + 1 :]]))
        for variant in variants:
            if variant in known or variant in _COMMON or variant in _FIRST_NAMES:
                continue
            for kind in wanted:
                _PHRASES.setdefault(variant, [])
                if kind not in _PHRASES[variant]:
                    _PHRASES[variant].append(kind)


# Kinds whose cue words get typo variants.
_TYPO_KINDS = frozenset(
    {"health_term", "clinical_term", "finance_term", "l:password", "l:gov", "l:account",
     "l:dob", "l:serial", "l:address_cue", "l:credit_score", "l:med_context", "l:money_label",
     "l:pin", "l:otp", "l:secret", "l:ssn_ctx", "l:routing", "l:imei", "l:cvv", "l:expiry",
     "l:health_value", "l:login", "l:mrn", "l:gov_nhs", "l:gov_aadhaar", "l:gov_sin",
     "l:sort_code", "l:swift", "l:last4", "l:birth_year"}
)  # fmt: skip
_register_typos()


def _register_contractions() -> None:
    """Register each health and money cue with "'s" under the same kinds.

    "the chemo's making me tired", "viral load's been undetectable", "my salary's 2.1 lakh":
    a term with "'s" (a contraction or a possessive) reads as the term.
    """
    for key, kinds in list(_PHRASES.items()):
        if not key.endswith("'s") and key.replace(" ", "").isalpha():
            for kind in kinds:
                if kind in ("health_term", "clinical_term", "l:health_value", "l:money_label"):
                    _register(kind, (key + "'s",))


_register_contractions()

# The phrase table as a token trie: token -> (kinds ending here, next level).
# Walking it compares token strings whose hashes Python has already cached,
# instead of joining and hashing every candidate n-gram.
_TrieNode = tuple[tuple[str, ...], dict]
_PHRASE_TRIE: dict[str, _TrieNode] = {}


def _build_trie() -> None:
    nodes: dict[str, list] = {}
    for key, kinds in _PHRASES.items():
        level = nodes
        words = key.split()
        for depth, word in enumerate(words):
            entry = level.setdefault(word, [(), {}])
            if depth == len(words) - 1:
                entry[0] = tuple(kinds)
            level = entry[1]

    def freeze(level: dict[str, list]) -> dict[str, _TrieNode]:
        return {word: (kinds, freeze(children)) for word, (kinds, children) in level.items()}

    _PHRASE_TRIE.update(freeze(nodes))


_build_trie()


_POSITION_KINDS = frozenset(
    {"fp", "rel", "rel_possessive", "first_name", "landmark", "public_figure", "locverb"}
)
_SPAN_KINDS = frozenset({"landmark", "public_figure"})
# What `scan` does with a phrase hit of each kind: record its token position (0),
# its position and character span (1), read the value after a label (2), or keep
# it for the topic recognisers (3).
_KIND_ROLE: dict[str, int] = {
    kind: (1 if kind in _SPAN_KINDS else 0) if kind in _POSITION_KINDS else (2 if kind[:2] == "l:" else 3)
    for kinds in _PHRASES.values()
    for kind in kinds
}


def _phrase_hits(tokens: list[str]) -> list[tuple[int, int, str]]:
    """Return (first_token, token_count, kind) for every registered phrase, longest first."""
    hits: list[tuple[int, int, str]] = []
    append = hits.append
    trie = _PHRASE_TRIE
    n = len(tokens)
    # Only tokens that begin a phrase (a third of them) reach the Python loop.
    for i in compress(range(n), map(trie.__contains__, tokens)):
        kinds, children = trie[tokens[i]]
        if children and i + 1 < n and tokens[i + 1] in children:
            levels = [kinds]
            node = children[tokens[i + 1]]
            size = 2
            while True:
                kinds, children = node
                levels.append(kinds)
                if not children or i + size >= n:
                    break
                node = children.get(tokens[i + size])
                if node is None:
                    break
                size += 1
            # Longest phrase first, as the label readers expect.
            for depth in range(size, 0, -1):
                for kind in levels[depth - 1]:
                    append((i, depth, kind))
        elif kinds:
            if len(kinds) == 1:
                append((i, 1, kinds[0]))
            else:
                hits.extend([(i, 1, kind) for kind in kinds])
    return hits


# ---------------------------------------------------------------------------
# Value regexes (anchored after labels, or gated full-text scans)

_NAME_TAIL = (
    r"(?:[A-Z]\.[ \t]?)?[A-Z][\w'’-]*[a-z][\w'’-]*"
    r"(?:[ \t](?:(?:van|von|de|da|di|del|der|le|la|bin|al|ibn|el)[ \t])?"
    r"[A-Z][\w'’.-]*[a-z][\w'’-]*){0,3}"
)
_NAME_AFTER_RE = re.compile(r"[ \t]*[,:]?[ \t]+(" + _NAME_TAIL + r")")
_NAME_AFTER_LOWER_RE = re.compile(r"[ \t]+([a-z][\w'’-]+(?:[ \t]+[a-z][\w'’-]+)?)")
_NAME_FIELD_VALUE_RE = re.compile(r"[ \t]*[:=][ \t]*(" + _NAME_TAIL + r"|[a-z][\w'’-]+[ \t]+[a-z][\w'’-]+)")
_TITLE_VALUE_RE = re.compile(r"\.?[ \t]+(" + _NAME_TAIL + r")")
_SIGNOFF_VALUE_RE = re.compile(r"[ \t]*[,.!:-]?[ \t]*\n?[ \t]*(" + _NAME_TAIL + r")[ \t]*(?:\n|$)")
_RELATION_VALUE_RE = re.compile(r"(?:[ \t]*,)?[ \t]+(" + _NAME_TAIL + r")")
_PASSWORD_VALUE_RE = re.compile(
    r"(?:\s+(?:for|on|to|of|do|da|de|du|del|für|van|voor|von|di|na|dla)\s+(?:[\w.@'-]+\s+){0,3}?[\w.@'-]+)?\s*"
    r"(?:,?\s*it(?:'|’)?s|,?\s*it\s+is|is\s+now|is\s+still|will\s+be|changed\s+to|set\s+to|reset\s+to|"
    r"should\s+be|is|was|=>|:=|->|=|:|to|ist|es|est|é|è|jest|er|är|is\s+nu)\s*[:=]?\s*[\"'`“‘(\[]?([^\s\"'`”’)\]]{3,64})",
    re.IGNORECASE,
)
# "app password for smtp is 'qwhz mbtr opla ksve'": a quoted value may hold spaces, and
# an app password's four groups of four letters read as one value even unquoted.
_PASSWORD_QUOTED_RE = re.compile(
    r"(?:\s+(?:for|on|to|of)\s+(?:[\w.@'-]+\s+){0,3}?[\w.@'-]+)?\s*(?:is\s+now|is\s+still|will\s+be|"
    r"changed\s+to|set\s+to|reset\s+to|should\s+be|is|was|=|:|to|ist|es|est)\s*[:=]?\s*"
    r"(?:[\"'`“‘]([^\"'`”’\n]{4,64}?)[\"'`”’]|([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})\b)",
    re.IGNORECASE,
)
# Twelve to twenty-four short words after "recovery phrase" or "seed phrase": a wallet's
# mnemonic. Prose has function words that no mnemonic word list holds.
_SEED_WORDS_RE = re.compile(r"[^\n]{0,40}?\b((?:[a-z]{3,8}[ ,]+){11,23}[a-z]{3,8})\b")
_NOT_SEED_WORDS = frozenset(
    {"the", "and", "that", "with", "was", "are", "for", "this", "but", "not", "have", "from",
     "they", "your", "you", "what", "when", "which", "its", "how", "can", "should", "would"}
)  # fmt: skip
# "password fOReLy!rfvAV": no verb, so only a value that looks like a secret counts.
_PASSWORD_BARE_RE = re.compile(r"[ \t]+[\"'`]?([^\s\"'`]{6,64})")
# "ops@acme.io / Summer2024!", "login: jdoe / hunter22": an account, a slash, a secret.
_LOGIN_PAIR_RE = re.compile(r"[ \t]*(?:/|\||:)[ \t]*[\"'`]?([^\s\"'`/|]{4,64})")
_CODE_VALUE_RE = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*(?:\(.*|\[.*|\.[A-Za-z_]\w*)")
_SNAKE_CASE_RE = re.compile(r"[a-z]+(?:_[a-z]+)+")
_CLI_PASSWORD_RE = re.compile(
    r"(?:--password[= ]|--pass[= ]|(?<=\s)-p(?=\S)|(?<=\s)-p\s+(?=[\"'])"
    r"|(?<=\s)(?:-u|--user)\s+[\"']?[\w.@-]+:)"
    r"[\"']?([^\s\"']{4,64})"
)
_PROSE_AFTER_RE = re.compile(r"[ \t]+([a-z]{2,})\b")
_PIN_VALUE_RE = re.compile(
    r"(?:\s+(?:for|on|to|of|at|für|von|pour|de|du|para|per|voor|dla)\s+(?:[\w'-]+\s+){0,3}?[\w'-]+"
    r"|,?\s+(?:the\s+|my\s+)?(?:current|new|old)\s+one)?\s*"
    r"(?:,?\s*it(?:'|’)?s|,?\s*it\s+is|is\s+now|changed\s+to|would\s+be|is|was|ist|est|es|è|é|jest|=|:|#|-|to)?"
    r"\s*(?:\(\s*(?:it'?s\s+|it\s+is\s+)?)?"
    r"[\"']?(\d{4,8}|\d(?:[- ]\d){3,7})\b",
    re.IGNORECASE,
)
_WIFI_VALUE_RE = re.compile(
    r"(?:\s+(?:at|in|for|on|of)\s+(?:[\w'-]+\s+){0,4}?)?\s*(?P<named>password|pass|key|code)?\s*"
    r"(?:is|:|=|-)\s*[\"'`“‘]?(?P<value>[^\s\"'`”’]{6,64}?)[\"'`”’.,;!?]*(?=\s|$)",
    re.IGNORECASE,
)
_PASS_SHORT_VALUE_RE = re.compile(r"[ \t]*[:=][ \t]*[\"'`]?([^\s\"'`]{6,64})")
_JOINERS = frozenset({"and", "but", "so", "or", "then", "btw", "lol", "pls", "please", "thanks"})
_LOGIN_VALUE_RE = re.compile(
    r"(?:\s+(?:for|to|of|on|do|da|de|du|del|für|van|voor|di|na|dla)\s+(?:[\w.'-]+:?\s+){0,4}?)?\s*(?:is|are|:|=)?\s*"
    r"([^\s/|]{3,64})[ \t]*(?:/|\|)[ \t]*[\"'`]?([^\s\"'`/|]{4,64})"
)
# After "my address is", "ship to", "send the statement to", "what's your address? it
# is": a street-like chunk with a house number in either order ("Mlýnská 1540",
# "12 Elm Way", a building number before it: "48334 36 rue de Pologne").
_ADDRESS_AFTER_CUE_RE = re.compile(
    r"[\s:,?-]*(?:(?:it\s+is|it's|is|to|at|as)\s+)?(?:the\s+corner\s+of\s+)?[\s:,-]*("
    r"\d{1,6}(?:[-/]\d{1,4}){0,3}[A-Za-z]?,?[ \t]+(?:\d{1,5}[A-Za-z]?[ \t]+)?"
    r"[^\W\d_][\w'’.-]*(?:[ \t]+[\w'’.-]+){0,3}"
    r"|[A-ZÀ-Ý][\w'’.-]*(?:[ \t]+[\w'’.-]+){0,3}?[ \t]+\d{1,5}[A-Za-z]?\b"
    r"|(?:calle|c/|avenida|avda\.?|rua|rue|via|viale|corso|plaza|paseo|carrer|travessa|alameda|ulica|ul\.)"
    r"[ \t]+[\w'’.-]+(?:[ \t]+[\w'’.-]+){0,3}?,?[ \t]+(?:n[º°o.][ \t]*)?\d{1,5}[A-Za-z]?\b"
    r"|(?:PSC|Unit|CMR)\s+\d{3,4},?\s+Box\s+\d{3,4}|(?:APO|FPO|DPO)\s+A[AEP]\s+\d{5})"
)
_MONEY_LABEL_VALUE_RE = re.compile(
    r"[ \t]*(?:is|of|was|:|=|about|around|roughly|only|like|me|us|him|her|ist|est|es|é|è|wynosi|"
    r"(?:going|went|goes|rising|rose|raised|increased|bumped|moving)[ \t]+(?:from|to))?[ \t]*"
    r"(?:about|around|roughly|only|like)?[ \t]*(\$?\d{1,3}(?:,\d{3})+(?:\.\d\d)?|\$?\d{3,7}(?:\.\d\d)?"
    r"|\d{1,3}(?:[.']\d{3})+(?:,\d\d)?|\d{1,3}(?:[ \u00a0\u202f]\d{3})+,\d\d"
    r"|\d{1,3}(?:\.\d{1,2})?\s?(?:k|l|lakhs?|lacs?|cr|crores?)|\$?\d{1,3}(?:\.\d\d)?(?=\s?(?:/|an?\s|per\s)\s?(?:hr|hour|h)\b))"
    r"\b(?!\s*(?:%|percent|years?|months?|weeks?|days?|hours?|minutes?|"
    r"people|times|miles|km|calories|steps|words))"
)
_MED_VALUE_RE = re.compile(r"[ \t]+(?:\d+\s?(?:mg|mcg|ml)\s+(?:of\s+)?)?([A-Za-z][\w-]{3,})")
_OTP_VALUE_RE = re.compile(r"[^\d\n]{0,30}?(?<!\d)(\d{3}[- ]\d{3}|\d{4,8}|\d(?:[ ]?-?[ ]?\d){3,7})\b")
_OTP_TRIGGER_RE = re.compile(
    r"otp|2fa|mfa|one[- ]time|verif|authenticat|texted|sms|sent me|they sent|received|log ?in|sign ?in|"
    r"backup|recovery|security|access|confirm|enter|type"
)
_OTP_NOT_BEFORE = frozenset(
    {"error", "zip", "area", "postal", "status", "exit", "promo", "discount", "country", "dial",
     "response", "http", "return", "product", "qr", "bar", "source", "post", "sort", "tax",
     "reference", "ref", "tracking", "voucher", "coupon", "gift", "diagnostic", "fault", "icd",
     "billing", "dress", "colour", "color", "course", "class", "sample", "example", "python",
     "java", "js", "c", "html", "css", "sql", "rust", "go", "following", "above", "below", "bash"}
)  # fmt: skip
_SECRET_VALUE_RE = re.compile(
    r"(?:[\w]*)[\"']?\s*(?:[:=]|=>|:=|\s+is\s+|\s+was\s+|\s*:\s*)\s*[\"'`]?"
    r"([A-Za-z0-9_\-+/=.~]{12,256})"
)
_BEARER_VALUE_RE = re.compile(r"\s+([A-Za-z0-9\-._~+/]{20,}=*)")
_LATER_VALUE_RE = re.compile(
    r"[^.\n?!]{0,60}?(?:\bit's|\bit’s|\bit\s+is|\bwhich\s+is|\bthat's)\s*[:\"'`]?\s*"
    r"([A-Za-z0-9][A-Za-z0-9-]{5,40})\b",
    re.IGNORECASE,
)
_IMEI_VALUE_RE = re.compile(r"[^\d\n]{0,30}?(\d{2}[- ]?\d{6}[- ]?\d{6}[- ]?\d{1,2})\b")
_SERIAL_VALUE_RE = re.compile(
    r"(?:\s+(?:(?:of|on|for|van|von|de|du|di|do|da)\s+)?(?:my|our|his|her|the|their|mijn|mojej|mojego|"
    r"meiner|meines|mon|ma|mi|meu|minha|mio|mia)\s+(?:[\w'-]+\s+){0,3}?(?=(?:is|ist|est|es|é|è|to)\b|:))?"
    r"\s*(?:,?\s*it(?:'|’)?s|is|was|ist|est|es|é|è|to|:|#|=|-|no\.?|number)?\s*[:#]?\s*[\"']?"
    r"(\d{2,6}(?:[ .]\d{2,6}){2,5}(?![\d.]|,\d)|[A-Za-z0-9][A-Za-z0-9-]{5,40})\b",
    re.IGNORECASE,
)
_LICENSE_VALUE_RE = re.compile(
    r"[ \t#:,]*(?:no\.?|number|num)?[ \t#:]*"
    r"(?:(?:the[ \t]+|my[ \t]+)?(?:current|new|old)[ \t]+one(?:'s|’s)?[ \t]*)?(?:is[ \t]+)?"
    r"([A-Za-z]\d{2,4}(?:[- ]?\d{1,5}){2,5}|[A-Za-z]{1,2}\d{6,12}|\d{9,12})(?![\w-])"
)
_GOV_VALUE_RE = re.compile(
    # "Steuer-ID meines Mannes: ...", "passport number of my wife is ...": whose it is, first
    r"(?:[ \t]+(?:(?:of|von|van|de|di|do|da)[ \t]+)?"
    r"(?:my|our|his|her|their|mein|meine[mnrs]?|mijn|mi|mon|ma|meu|minha)[ \t]+[\w'’-]+)?"
    # "tax ID (Steuer-ID) is ...": the label's other name in brackets
    r"(?:[ \t]*\([^()\n\d]{1,30}\))?"
    # "c'est le ...", "es el ...", "é o ..."
    r"(?:[ \t]+(?:c'est|c’est|es|é|ist)(?:[ \t]+(?:le|la|el|o|die|der))?(?=[ \t]))?"
    r"[\s:#.=(,-]{0,4}(?:(?:it's|it\s+is|ist|is|was|as|down|number|no\.?|num|of|id|est|es|è|é|er|är|jest|nr\.?|n[º°o]\.?)"
    r"\s*[:#]?\s*){0,3}"
    r"([A-Za-z0-9](?:[A-Za-z0-9./-]|[ ](?=[A-Za-z]?\d)){3,22}[A-Za-z0-9])(?![\w-])",
    re.IGNORECASE,
)
_GOV_LATER_NUMBER_RE = re.compile(
    r"[^.\n\d]{0,40}?\b(?:number|no\.?|num|#)\s*[:#]?\s*(?:is\s+|was\s+)?([A-Z]{0,2}\d{6,12})\b",
    re.IGNORECASE,
)
_BANK_OWNS_RE = re.compile(r"\b[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*){0,3}(?:'s|’s)\s+(?:(?:ach|wire|aba)\s+)?$")
_ROUTING_VALUE_RE = re.compile(r"[^\d\n]{0,40}?(?<!\d)(\d{9})\b")
_ACCOUNT_VALUE_RE = re.compile(
    r"\.?\s*(?:number|no\.?|num|#)?\s*(?:is|:|#|=|ending in)?\s*[:#]?\s*"
    r"(?<![\w-])([0-9][0-9 -]{4,20}[0-9])(?![\w-])",
    re.IGNORECASE,
)
_SORT_CODE_VALUE_RE = re.compile(
    r"\s*(?:is|:|#|=)?\s*(\d{2}[- ]?\d{2}[- ]?\d{2}|\d{3}-\d{3})\b", re.IGNORECASE
)
_SWIFT_VALUE_RE = re.compile(
    r"\s*(?:code)?\s*(?:is|:|#|=)?\s*([A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b"
)
_DATE_SRC = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}"
    r"(?:st|nd|rd|th)?,?\s+\d{4}"
    r"|\d{1,2}(?:st|nd|rd|th|er|º)?\.?\s+(?:of\s+|de\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|"
    r"oct|nov|dec|ene|abr|ago|dic|fev|fév|mai|set|out|dez|avr|aoû|déc|mär|okt|giu|lug|ott)[a-zéûçä]*\.?,?"
    r"\s+(?:de\s+)?\d{4})"
)
_DOB_COMPARISON_RE = re.compile(
    r"\b(?:before|after|between|since|until|older|younger|earlier|later|from)\b|[<>]=?", re.IGNORECASE
)
# "me 6/30/84, husband 2/11/82", "I'm a 19 june 1978 baby": a past date right after a
# person, or before "baby", is a birthday even without the word.
_DATE_AT_RE = re.compile(_DATE_SRC, re.IGNORECASE)
_PERSON_DATE_WORDS = frozenset(
    {"me", "myself", "husband", "wife", "partner", "son", "daughter", "mom", "mum", "dad",
     "mother", "father", "hubby", "spouse"}
)  # fmt: skip
_DATE_GAP_RE = re.compile(r"[ \t]*[:,(-]?[ \t]*")
_BABY_AFTER_RE = re.compile(r"[ \t]+baby\b", re.IGNORECASE)
_MONTH_TOKENS = frozenset(
    {"jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june",
     "jul", "july", "aug", "august", "sep", "sept", "september", "oct", "october", "nov",
     "november", "dec", "december"}
)  # fmt: skip
# "HR wants my date of birth for the pension form, it's 1979-11-02", "DOB as mm/dd/yyyy,
# mine's 22 august 1986": the date comes later in the sentence, after "it's" or "mine's".
_DOB_LATER_VALUE_RE = re.compile(
    r"[^.\n?!]{0,60}?\b(?:it's|it’s|it is|its|mine's|mine’s|mine is)\s*:?\s*(" + _DATE_SRC + r")",
    re.IGNORECASE,
)
_DOB_VALUE_RE = re.compile(r"[^\n\d]{0,24}?(" + _DATE_SRC + r")", re.IGNORECASE)
# A date written out in words after a birth label: "mine's the seventeenth of january
# nineteen eighty-three", "march the third, two thousand and one".
_ORDINAL_WORDS = (
    r"(?:(?:twenty|thirty)[- ]?)?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
    r"|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth"
    r"|nineteenth|twentieth|thirtieth"
)
_MONTH_WORDS = r"january|february|march|april|may|june|july|august|september|october|november|december"
_YEAR_WORDS = (
    r"(?:nineteen|twenty)[- ](?:oh[- ])?[a-z]+(?:[- ][a-z]+)?"
    r"|two thousand(?: and)?(?:[- ][a-z]+)?|(?:19|20)\d\d"
)
_SPOKEN_YEAR = rf"(?:\s*,?\s*(?:{_YEAR_WORDS}))?"
_SPOKEN_DOB_VALUE_RE = re.compile(
    rf"[^\n\d]{{0,40}}?\b((?:the\s+)?(?:{_ORDINAL_WORDS})\s+(?:of\s+)?(?:{_MONTH_WORDS}){_SPOKEN_YEAR}"
    rf"|(?:{_MONTH_WORDS})\s+(?:the\s+)?(?:{_ORDINAL_WORDS}){_SPOKEN_YEAR})\b",
    re.IGNORECASE,
)
_BIRTH_YEAR_VALUE_RE = re.compile(r"\s*(?:in\s+)?[:]?\s*((?:19|20)\d{2})\b")
_CVV_VALUE_RE = re.compile(r"\s*(?:is|:|#|=|code)?\s*[:#]?\s*(\d{3,4})\b", re.IGNORECASE)
_EXPIRY_VALUE_RE = re.compile(
    r"\.?\s*(?:date|on)?\s*[:\-]?\s*(?:is\s+)?(0?[1-9]|1[0-2])\s?[/-]\s?(\d{2}|20\d{2})\b",
    re.IGNORECASE,
)
_LAST4_VALUE_RE = re.compile(r"[^\d\n]{0,8}(\d{4})\b")
_SCORE_RANGE_AFTER_RE = re.compile(r"\s*(?:-|–|to|and)\s*(\d{3})\b", re.IGNORECASE)
_COMPARISON_RE = re.compile(r"[<>]|!=|\b(?:above|below|over|under|between|greater|less)\b")
_CREDIT_SCORE_VALUE_RE = re.compile(r"[^\d\n]{0,30}?(?<!\d)([3-8]\d{2})s?\b")
_HEALTH_VALUE_VALUE_RE = re.compile(
    r"\s*(?:is|was|of|at|came\s+back(?:\s+at)?|reading(?:\s+of)?|levels?|:|=|went\s+up\s+to|"
    r"dropped\s+to|now|around|about|hit|over|under)?\s*(?:at\s+|is\s+|of\s+)?"
    r"(\d{1,4}(?:[.,]\d{1,2})?(?:\s?/\s?\d{2,3})?)(?![\d.])",
    re.IGNORECASE,
)
_AGE_VALUE_RE = re.compile(r"\s+(\d{1,3})\b(?!\s*(?:%|am|pm|:|mg|kg|km|lbs|minutes|hours))")
_UNIT_VALUE_RE = re.compile(r"\.?\s*#?\s*\d{1,5}[A-Za-z]?\b")
_ROMANCE_VALUE_RE = re.compile(
    r"\w+\.?\s+(?:(?:de|du|des|la|le|l'|del|della|di|da|do|dos|das|de la)\s+)?[A-ZÀ-Ý][\w'’-]+"
    r"(?:\s+(?:(?:de|du|des|la|le|del|della|di|da|do|dos|das)\s+)?[A-ZÀ-Ý][\w'’-]+){0,3},?\s*"
    r"(?:n[º°o.]\s*)?(\d{1,4})?[a-zA-Z]?\b"
)
_EU_STREET_SUFFIXES = (
    "straße", "strasse", "str", "weg", "gasse", "platz", "allee", "damm", "ring", "ufer",
    "chaussee", "straat", "laan", "gracht", "plein", "dijk", "kade", "vej", "gade", "gatan",
    "vägen", "veien", "gata", "katu", "tie",
)  # fmt: skip
_UNIT_WORDS = frozenset({"apt", "apartment", "suite", "ste", "unit", "flat"})


def _street_before_units(scan: Scan) -> Iterator[re.Match[str]]:
    """`_NAME_NUMBER_UNIT_RE` matches, looked for only in the stretch before each unit word
    (the pattern has no literal to skip ahead to; a whole long prompt costs a millisecond)."""
    text = scan.text
    tokens = scan.tokens
    done = -1
    for i in compress(count(), map(_UNIT_WORDS.__contains__, tokens)):
        at = scan.token_starts[i]
        j = at - 1
        while j >= 0 and text[j] in " \t\n>?*|-,.":
            j -= 1
        if j < 0 or not (text[j].isdigit() or (j and text[j].isalpha() and text[j - 1].isdigit())):
            continue  # no house number right before the unit word
        for m in _NAME_NUMBER_UNIT_RE.finditer(text, max(0, at - 90, done), min(len(text), at + 20)):
            done = m.end()
            yield m


_NUMBERED_PARTS = frozenset(
    {"chapter", "lesson", "module", "grade", "level", "page", "part", "section", "week", "year",
     "day", "step", "volume", "episode", "season", "phase", "stage", "class", "test", "quiz",
     "exercise", "problem", "question", "lecture", "book", "vol", "ch", "sec", "version", "v"}
)  # fmt: skip
_NUMBER_BEFORE_RE = re.compile(r"\d{1,6}[ \t]+$")
_NAME_NUMBER_UNIT_RE = re.compile(
    r"(?<![\w'’.-])([A-Za-zÀ-ÿ][\w'’.-]+(?:[ \t]+[\w'’.-]+){0,3}[ \t]+\d{1,4}[A-Za-z]?)[,.]?[ \t]*"
    r"(?:\n[ \t>?*|-]*)?(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?[ \t]+#?\d{1,5}\b",
    re.IGNORECASE,
)
_EU_NUMBER_RE = re.compile(r"\.?\s+(\d{1,4}[a-zA-Z]?)\b")
_CURRENCY_VALUE_RE = re.compile(r"\s?\$?\s?\d[\d,.']*")

_EMAIL_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + "._%+'-")
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._%+'-]{0,62}[A-Za-z0-9_])?@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_PHONE_RE = re.compile(
    r"[+(\d](?:"
    r"(?<=\+)\s?\d{1,3}[\s.-]?(?:\(0?\d{1,4}\)[\s.-]?)?\d{1,5}(?:[\s.-]?\d{2,5}){1,4}"
    r"|(?<=\()\d{3}\)\s?\d{3}[\s.-]?\d{4}"
    r"|(?<=\d)(?:[\s.-]\d{2,3}[\s.-]\d{3}[\s.-]\d{4}|\d{2}[\s.-]\d{3}[\s.-]\d{4})"
    r"|(?<=0)\d(?:[\s.-]?\d{2}){4}"
    r"|(?<=0)\d{2,4}[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|(?<=\d)\d{2}[\s.-]\d{4}"
    r"|(?<=\d)\d{9,10}"
    # Indian mobiles, five and five: "98204 71536".
    r"|(?<=[6-9])\d{4}[\s-]\d{5}"
    # German and Austrian style, the area code before a slash: "0176/44 28 193".
    r"|(?<=0)\d{2,4}\s?/\s?\d{2,4}(?:[\s.-]?\d{2,4}){0,3}"
    r")(?![\w-]|\.\d)"
)
_CONTEXT_PHONE_RE = re.compile(
    r"phone|\bph\b|call|cell|mobile|\bmob\b|\btel|number|\bno\.|\bnum\b|text|\btxt\b|sms|"
    r"whatsapp|signal|telegram|reach|contact|\bring\b|fax|landline|dial|handy|viber|voicemail|"
    r"\bext\b|extension|answering|messages?|receiving|registered|texting|"
    r"ruf|telefon|t[eé]l[eé]phone|portable|m[oó]vil|celular|llam|num[eé]ro|n[uú]mero|nummer|"
    r"chiam|cellulare|zurück|телефон|тел\.|номер|جوال|هاتف|رقم|手机|电话"
)
# Any grouped digit run, read as a phone number only next to a phone word and
# away from words that make it an order, account or booking reference.
_PHONE_GENERIC_RE = re.compile(r"(?:\(\d{2,4}\)\s?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?![\w-]|[.,]\d)")
_NOT_PHONE_CONTEXT_RE = re.compile(
    r"order|invoice|tracking|account|acct|card|reference|\bref\b|serial|model|part\b|ticket|"
    r"case\b|policy|flight|booking|confirmation|zip|postal|isbn|sku|\bid\b|version|room|"
    r"population|score|\$|€|£"
)
_FIVE_FIVE_RE = re.compile(r"\d{5}[\s-]\d{5}")
_DATE_SHAPE_RE = re.compile(
    r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{4}"
)
# Separators as people type them: "4929 7443 ...", "4929  7443 ..." (double spaces),
# "6011-9459-...", "6011.9459.2082.5569" (dots, only between groups of four).
# Not followed by a decimal part or a thousands group ("...,45", "...,450"); a comma before
# another field ("3782 717598 54046,412.50,2024-04-02") ends a card.
_CARD_RE = re.compile(r"\d(?:(?: ?[ -]|\.(?=\d{4}(?:\.|\D|$)))?\d){11,18}(?![\w-]|\.\d|,\d{1,3}(?![\d.]))")
_CONTEXT_CARD_RE = re.compile(
    r"card|visa|master|amex|american express|discover|credit|debit|\bcc\b|ccn|\bpan\b|cvv|"
    r"cvc|expir|\bexp\b|payment|\bpay|charge|billing|karte|carte|tarjeta|cart[ãa]o|卡"
)
# After "ssn" or "social": nine digits however the phone grouped them ("53622 8146").
_SSN_LOOSE_VALUE_RE = re.compile(
    r"[\s:#=-]{0,3}(?:(?:is|number|no\.?|#)\s*[:#]?\s*){0,2}((?<![\d-])\d(?:[ -]{0,2}\d){8})(?![\d-])",
    re.IGNORECASE,
)
_SIN_RE = re.compile(r"\d{3}([ -])\d{3}\1\d{3}(?![\w-])")
# Upper-case "SIN" only: Spanish "sin" ("without") sits beside nine-digit phone numbers.
_SIN_CONTEXT_RE = re.compile(r"\bSIN\b|[Ss]ocial [Ii]nsurance")
_REFERENCE_BEFORE_RE = re.compile(
    r"\b(?:part|model|sku|item|order|ref|reference|invoice|tracking|case|ticket|po|product|catalog|"
    r"catalogue)\.?\s*(?:no\.?|number|num|#|id)?\s*[:#]?\s*$",
    re.IGNORECASE,
)
_SSN_RE = re.compile(r"\d{3}([- ]?)\d{2}\1\d{4}(?![\w-])")
_CONTEXT_SSN_RE = re.compile(r"ssn|ss#|social|socsec|\btin\b|itin|taxpayer")
_CONTEXT_ITIN_RE = re.compile(r"itin|\btin\b|taxpayer|\btax|\birs\b|w-?7\b|1040")
# Patterns that run over the whole text open on a single character class where they can
# ("[A-Z][A-Z]", not "[A-Z]{2}"): the regex engine then skips to the next possible start in C.
# Either case: people type IBANs in lower case too ("my iban is gb42nawi...").
_IBAN_RE = re.compile(r"[A-Za-z][A-Za-z]\d\d(?:[ ]?[A-Za-z0-9]){11,30}(?![\w])")
_NINO_RE = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
# India's PAN: five letters, four digits, a check letter; the fourth letter is the holder's
# type, "P" for a person. "ABCPE1234F"-style worked examples run the alphabet.
# Searched from its literal "P" (which the regex engine skips to quickly); the three letters
# before it are checked by hand.
_PAN_CORE_RE = re.compile(r"P[A-Z]\d{4}[A-Z](?![\w-])")
_PAN_EXAMPLE_PREFIXES = ("ABC", "AAA", "XYZ", "XXX")
_API_KEY_PREFIXES = (
    "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "AKIA", "ASIA",
    "AGPA", "AIDA", "AROA", "xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "AIza",
    "sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "whsec_", "hf_", "npm_",
    "pypi-", "SG.", "shpat_", "dop_v1_", "ya29.", "EAAC", "EAAG", "hooks.slack.com/services/", "AC", "SK",
)  # fmt: skip
_API_KEY_RE = re.compile(
    r"(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?|live-|or-v1-)?[A-Za-z0-9_-]{20,}"
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[A-Za-z0-9_-]{35}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|whsec_[A-Za-z0-9]{20,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|npm_[A-Za-z0-9]{30,}"
    r"|pypi-[A-Za-z0-9_-]{40,}"
    r"|(?<![A-Za-z0-9])(?:AC|SK)[0-9a-f]{32}(?![A-Za-z0-9])"
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    r"|shpat_[a-fA-F0-9]{32}"
    r"|dop_v1_[a-f0-9]{40,}"
    r"|ya29\.[A-Za-z0-9_-]{30,}"
    r"|EAA[CG][A-Za-z0-9]{30,}"
    r"|hooks\.slack\.com/services/T[A-Za-z0-9]{6,}/B[A-Za-z0-9]{6,}/[A-Za-z0-9]{16,}"
    r")"
)
_PEM_RE = re.compile(
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP |ED25519 )?PRIVATE KEY(?: BLOCK)?-----"
)
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_URL_CRED_RE = re.compile(r"://([^\s:/@]{1,64}):([^\s@/]{1,128})@")
_HIGH_ENTROPY_RE = re.compile(r"[A-Za-z0-9_\-+/=]{20,}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MAC_RE = re.compile(
    r"[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![\w.])"
)
_MAC_SPACED_RE = re.compile(r"(?<![\w:-])[0-9A-Fa-f]{2}(?: [0-9A-Fa-f]{2}){5}(?![\w:-])")
_MAC_GATE_RE = re.compile(r"[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]")
_MAC_PLACEHOLDERS = frozenset(
    {"000000000000", "ffffffffffff", "001122334455", "0123456789ab", "aabbccddeeff",
     "123456789abc", "112233445566", "abcdefabcdef", "deadbeefcafe", "001a2b3c4d5e",
     "001b44113ab7"}
)  # fmt: skip
# Values documentation and tutorials use: Stripe's test routing number, the IMEI of the
# format's usual worked example, and the MAC range RFC 7042 reserves for documentation.
_EXAMPLE_ROUTING_NUMBERS = frozenset({"110000000", "110000012"})
_EXAMPLE_IMEIS = frozenset({"490154203237518", "123456789012347"})
_MAC_DOCUMENTATION_PREFIXES = ("00005e0053", "00005e9000")
_IPV4_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_YEAR_RE = re.compile(r"(?:1[0-9]|20)\d{2}")
_STREET_SUFFIX_STRONG = frozenset(
    {"street", "st", "avenue", "ave", "av", "road", "rd", "boulevard", "blvd", "lane", "ln",
     "drive", "dr", "parkway", "pkwy", "highway", "hwy", "strasse", "straße"}
)  # fmt: skip
_STREET_SUFFIX_WEAK: frozenset[str] = frozenset(
    {"court", "ct", "place", "pl", "way", "terrace", "ter", "close", "crescent", "cres",
     "circle", "cir", "square", "sq", "trail", "trl", "row", "alley", "loop", "grove", "gardens",
     "gdns", "mews", "walk", "hill", "heights", "view", "ridge", "park", "plaza", "pike", "path",
     "point", "commons", "green", "rise", "vale", "wharf", "quay", "crossing", "estates"}
)  # fmt: skip
_STREET_SUFFIXES = _STREET_SUFFIX_STRONG | _STREET_SUFFIX_WEAK
# House number and 1-4 street-name words, ending right before a street suffix.
_STREET_PREFIX_RE = re.compile(r"\d\d{0,5}[A-Za-z]?(?:[-/]\d{1,4})?,?\s+((?:[A-Za-zÀ-ÿ0-9.'’-]+\s+){1,4})$")
_US_STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "DC",
    ]
)
# US military mail ("PSC 1234, Box 5678 APO AE 09012"): the APO/FPO/DPO line with its
# region code and ZIP, plus the unit or ship line right before it when there is one.
_MILITARY_POST_RE = re.compile(
    r"(?:(?:PSC|CMR|Unit)\s+\d{3,5},?\s+Box\s+\d{1,5},?\s*|US[NSC][A-Z]*\s+[A-Z][\w .'-]{1,40}?,?\s*)?"
    r"\b[ADF]PO\s+A[AEP]\s+\d{5}\b"
)
# "\bp\.?\s?o\.?\s?box...", opening on the letter (the lookbehind is the word boundary).
_PO_BOX_RE = re.compile(r"p(?<!\wp)\.?\s?o\.?\s?box\s+\d{1,7}\b", re.IGNORECASE)
# Cheap tests that a text can hold a match at all (the full patterns have no literal to skip to).
_PO_BOX_GATE_RE = re.compile(r"box\s+\d")
# The APO/FPO/DPO line alone, which every military address ends with; a match of
# the whole pattern starts there or at one of _MILITARY_POST_STARTS before it.
_MILITARY_POST_CORE_RE = re.compile(r"[ADF](?<!\w[ADF])PO\s+A[AEP]\s+\d{5}\b")
_MILITARY_POST_STARTS = ("PSC", "CMR", "Unit", "USN", "USS", "USC")
_GPS_RE = re.compile(r"[-+]?\d{1,2}\.\d{3,}\s*°?\s*[NSns]?\s*,\s*[-+]?\d{1,3}\.\d{3,}\s*°?\s*[EWew]?")
_GPS_GATE_RE = re.compile(r"\.\d{3}")
_GPS_DMS_RE = re.compile(r"\d{1,2}°\s?\d{1,2}['′]\s?\d{1,2}(?:\.\d+)?[\"″]?\s?[NS]")
_CURRENCY_SIGNS = "$€£¥₹₩₽"
_MONEY_RE = re.compile(r"[$€£¥₹₩₽]\s?\d[\d,.']*(?:\s?(?:k|K|m|M|mm|bn|million|thousand|grand|lakh|crore)\b)?")
_CURRENCY_WORDS = frozenset(
    {"dollars", "dollar", "bucks", "usd", "eur", "euro", "euros", "pounds", "quid", "gbp",
     "rupees", "inr", "cad", "aud", "chf", "yen", "pesos", "francs", "sek", "nok", "dkk",
     "zloty", "pln", "rand", "grand", "k", "million", "thousand", "lakh", "crore", "lpa", "lakhs"}
)  # fmt: skip
_MONEY_SIGN_AFTER_RE = re.compile(r"\d{1,3}(?:[ .\u00a0\u202f]\d{3})*(?:,\d{2})?\s?[€£](?!\w)")
_MONEY_SUFFIX_RE = re.compile(
    r"\d[\d,.']*\s?(?:(?:k|mm|million|thousand|grand|lakh|crore)\s?)?(?:dollars?|bucks|usd|eur|"
    r"euros?|pounds|quid|gbp|rupees|inr|cad|aud|chf|yen|pesos|francs|sek|nok|dkk|zloty|pln|"
    r"rand|grand|lakhs?|crores?|lpa)\b",
    re.IGNORECASE,
)
_MONEY_K_RE = re.compile(
    r"(?<!\d)(?!401\s?k\b)\d{1,3}(?:[.,]\d)?\s?[kK]\b(?!\s*(?:m\b|km|g\b|b\b|steps|miles|words|tokens|views|"
    r"followers|ram|run|race|subscribers|lines|rows|records|users|people|resolution|context))"
)
_DOSAGE_RE = re.compile(
    r"\d{1,4}(?:\.\d{1,2})?\s?(?:mg|mcg|µg|ug|ml|iu|units|milligrams|micrograms)\b",
    re.IGNORECASE,
)
_SEVEN_DIGITS_RE = re.compile(r"[+(]?\s?(?:\d[\s.()/-]{0,2}){7}")
_DIGIT_CHARS = frozenset("0123456789")
# "[.!?;]\s|\n", opening on one character class.
_SENTENCE_END_RE = re.compile(r"[.!?;\n](?:(?<=\n)|\s)")
_PLACEHOLDER_VALUE_RE = re.compile(
    r"(?:your|my|<|\[|\{|\$|%|x{3,}|\*{3,}|\.{3}|change[_-]?me|replace[_-]?me|fill[_-]?me|set[_-]?me|"
    r"example|sample|dummy|test|fake|"
    r"redacted|placeholder|todo|none|null|undefined|secret|password|token|api|key|env|"
    r"abc|123)",
    re.IGNORECASE,
)
_ENV_REFERENCE_MARKERS = (
    "os.environ", "getenv", "process.env", "${", "{{", "<your", "your_", "YOUR_", "xxxx",
    "XXXX", "****", "<api", "<token", "<password",
)  # fmt: skip
_CODE_MARKERS = (
    "```", "def ", "import ", "=>", "();", "};", "</", "#include", "console.log", "print(",
    # an indented or braced "return", not a tax return or a returned jacket
    "  return ", "\treturn ", "{ return ", "{return ", "function(", "function (", "self.", "const ",
)  # fmt: skip


# ---------------------------------------------------------------------------
# Helpers


def _anchored(regex: re.Pattern[str], text: str, starts: list[int]) -> Iterator[re.Match[str]]:
    """Yield non-overlapping matches of `regex` that begin at one of `starts`.

    Numbers start at number tokens, so trying a numeric regex only there
    finds what `finditer` would, without walking every character.
    """
    last_end = -1
    for start in starts:
        if start < last_end:
            continue
        m = regex.match(text, start)
        if m:
            last_end = m.end()
            yield m


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    for s, e in spans:  # noqa: SIM110 - a plain loop beats any() on this hot path
        if s < end and start < e:
            return True
    return False


def _window(text: str, start: int, end: int, width: int = 40) -> str:
    return text[max(0, start - width) : end + width].lower()


def _digits(value: str) -> str:
    return "".join(filter(str.isdigit, value))


def _boundary_before(text: str, start: int, banned: str = "") -> bool:
    """Return True when `start` does not continue a word (or a banned char)."""
    if start == 0:
        return True
    prev = text[start - 1]
    if prev == "," and start >= 2 and not text[start - 2].isdigit() and not text[start - 2].isspace():
        return True  # "Ravi Menon,3782 717598 54046": a CSV field's start, not "1,234"
    return not (prev.isalnum() or prev == "_" or prev in banned)


# "XX-XXX4417", "***-**-1234", "xxxx xxxx 1234": masked but for the last digits.
_MASKED_RE = re.compile(r"[Xx*•#]{2,}(?:[- ]?[Xx*•#]+)*[- ]?\d{2,4}")


def _looks_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER_VALUE_RE.match(value))


def _complex_secret(value: str) -> bool:
    """Return True for a token mixing letters with digits or symbols (a password shape)."""
    stripped = value.strip(".,;:!?)]}\"'")
    if len(stripped) < 6 or stripped.lower() in _COMMON or "/" in stripped:
        return False
    if "@" in stripped and (_EMAIL_RE.fullmatch(stripped) or stripped.startswith("@")):
        return False  # an address or a handle, not a password ("Tp-Link@0419" is one)
    has_alpha = any(c.isalpha() for c in stripped)
    has_digit = any(c.isdigit() for c in stripped)
    has_symbol = any(not c.isalnum() for c in stripped)
    has_mixed = any(c.isupper() for c in stripped[1:]) and any(c.islower() for c in stripped)
    return has_alpha and (has_digit or has_symbol or has_mixed) and _secret_value_ok(stripped)


def _secret_value_ok(value: str) -> bool:
    """Return True when the value after 'password is' looks like a real secret."""
    stripped = value.strip(".,;:!?)]}\"'")
    low = stripped.lower()
    if len(stripped) < 3 or low in _COMMON or low in lexicon.PLACEHOLDER_SECRETS:
        return False
    if "example" in low or "xxxx" in low or "****" in low or "your" in low:
        return False
    if _CODE_VALUE_RE.fullmatch(stripped) or _SNAKE_CASE_RE.fullmatch(stripped):
        return False  # input("Password: "), user.password, getpass(), settings[...], aws_db_instance
    if len(set(low)) == 1 or _looks_placeholder(stripped) and not any(c.isdigit() for c in stripped[3:]):
        return False
    if stripped[:1] + stripped[-1:] in ("<>", "[]", "{}"):
        return False  # "<base64-encoded-password>": a stand-in in brackets
    return not any(marker in stripped for marker in _ENV_REFERENCE_MARKERS)


def _year_of(date_text: str) -> int | None:
    years = _YEAR_RE.findall(date_text)
    if years:
        return int(years[-1])
    tail = date_text[-2:]
    if tail.isdigit():
        value = int(tail)
        return 2000 + value if value <= 25 else 1900 + value
    return None


# ---------------------------------------------------------------------------
# Full-text recognisers


def _scan_email(text: str, scan: Scan, taken: list[tuple[int, int]]) -> None:
    at = text.find("@")
    while at >= 0:
        # Local parts hold no whitespace: start the match at the word before '@'.
        # Local parts hold none of "=<>():;,\"" either: "user=ewan@..." starts at "ewan".
        begin = at
        while begin > max(0, at - 64) and text[begin - 1] in _EMAIL_LOCAL_CHARS:
            begin -= 1
        while begin < at and not text[begin].isalnum():
            begin += 1
        m = _EMAIL_RE.match(text, begin, at + 256)
        at = text.find("@", at + 1)
        if m is None:
            continue
        start, end = m.span()
        if not _boundary_before(text, start, ".+-") or _overlaps(taken, start, end):
            continue
        value = m.group().lower()
        local, _, domain = value.partition("@")
        taken.append((start, end))
        if domain in lexicon.PLACEHOLDER_EMAIL_DOMAINS or domain.endswith(
            (".example", ".test", ".invalid", ".local", ".localhost")
        ):
            scan.signals["email_placeholder"] += 1
        elif local.split("+")[0] in lexicon.ROLE_EMAIL_LOCALPARTS or _ROLE_LOCAL_RE.search(local):
            scan.signals["email_role"] += 1
        elif local in ("user", "username", "name", "firstname.lastname", "john.doe", "jane.doe"):
            scan.signals["email_placeholder"] += 1
        else:
            scan.add("email", start, end, "email", True)
        pair = _LOGIN_PAIR_RE.match(text, end)
        if pair and _complex_secret(pair.group(1)) and not _overlaps(taken, *pair.span(1)):
            scan.add("credential", pair.start(1), pair.end(1), "login_pair", True)
            taken.append(pair.span(1))


# "eng-team@", "kundenservice@", "meajuda@": a team's or a service's mailbox.
_ROLE_LOCAL_RE = re.compile(
    r"(?:^|[._-])team$|^team[._-]|support|service|kontakt|contact|contacto|contato|ajuda|aiuto|hilfe|"
    r"helpdesk|enquir|inquir|bookings?$|reservations?$|noreply|no-reply|donotreply|newsletter|^hello$|^hola$|"
    r"^bonjour$|^hallo$|^ciao$|^ola$|^orders?$|^shop$|^store$|^office$|^admin$|^reception$|"
    r"billing|invoices?$|accounts-?payable|careers|recruiting|press$|presse$|datenschutz|privacy"
)


# "In my novel ...", "in the game ...", "the character's ...": what follows is made up.
_FICTION_FRAME_RE = re.compile(
    r"\bin\s+(?:my|the|a|our|this)\s+(?:novel|story|short story|screenplay|book|script|game|play|film|"
    r"movie|campaign|comic|fanfic|thriller|mystery|whodunit|sitcom|episode|sketch|"
    r"manuscript|murder mystery|mystery novel|crime novel|sci-fi story|fantasy novel|rpg|d&d|larp)\b|"
    # "in the heist film", "in my sci-fi story": one word before a kind of fiction
    r"\bin\s+(?:my|the|a|our|this)\s+[\w-]+\s+(?:novel|story|screenplay|thriller|film|movie|comic|sitcom)\b|"
    r"\bcharacter'?s?\b|\bfictional\b|\bprotagonist\b|\bvillain\b|\bantagonist\b|\bnpc\b|"
    r"\bbackstory\b|\bgame design\b|\bworldbuilding\b|\bcharacter sheet\b|\bheroine\b|"
    r"\b(?:write|writing|draft)\s+(?:me\s+)?(?:a|an)\s+(?:[\w-]+\s+)?(?:story|novel|scene|screenplay|tale|"
    r"short story|fanfic|script)\b|\bmy\s+(?:novel|story|book|screenplay|script|game)(?:'s|’s)|"
    # "write a poem where ...": an invented scene; "a birthday poem for my daughter" is not
    r"\b(?:write|writing|draft)\s+(?:me\s+)?(?:a|an)\s+(?:[\w-]+\s+)?poem\s+(?:where|in\s+which)\b",
    re.IGNORECASE,
)


# A preface that says the text pasted after it is the writer's own fiction: "I'm writing a
# thriller for NaNoWriMo", "punch up the dialogue in this scene from my screenplay".
_FICTION_PREFACE_RE = re.compile(
    r"\b(?:i'?m|i\s+am|we'?re|currently)\s+(?:writing|drafting|working\s+on)\s+(?:a|an|my|our)\s+"
    r"(?:[\w-]+\s+){0,2}?(?:novel|story|thriller|screenplay|script|mystery|fanfic)\b"
    r"|\b(?:from|of|in)\s+(?:my|our)\s+(?:[\w-]+\s+)?(?:novel|thriller|screenplay|script|manuscript|"
    r"short\s+story|fanfic|sitcom)\b",
    re.IGNORECASE,
)
# Table columns whose header names what each row's cell holds: header word -> (category,
# evidence kind, strong). A cell is read only in a row with as many cells as the header.
_COLUMN_KINDS: dict[str, tuple[str, str, bool]] = {
    **dict.fromkeys(("sort_code", "sortcode", "sort code"), ("bank_account", "sort_code", True)),
    **dict.fromkeys(("account_no", "account_number", "account number", "acct", "acct_no", "bank_account",
                     "account no", "iban"), ("bank_account", "account_number", True)),
    **dict.fromkeys(("ssn", "sin", "nino", "ni_number", "ni number", "national_insurance", "passport",
                     "passport_no", "passport_number", "tax_id", "tin", "nhs_number", "nhs number", "bsn",
                     "aadhaar", "pan", "cpf", "national_id"), ("government_id", "gov_id", True)),
    **dict.fromkeys(("dob", "date_of_birth", "date of birth", "birth_date", "birthdate", "birthday"),
                    ("date_of_birth", "dob", True)),
    **dict.fromkeys(("phone", "mobile", "phone_number", "tel", "cell", "mobile_number", "telephone"),
                    ("phone", "phone_generic", True)),
    **dict.fromkeys(("card", "card_number", "cc", "credit_card", "card_no"),
                    ("payment_card", "card_unverified", False)),
    **dict.fromkeys(("password", "pwd", "passwd", "pin", "secret", "token", "api_key", "apikey"),
                    ("credential", "password", True)),
    **dict.fromkeys(("imei", "mac", "mac_address", "serial", "serial_number", "serial_no", "device_id",
                     "udid"), ("device_id", "serial", True)),
    **dict.fromkeys(("salary", "gross", "gross_monthly", "gross_pay", "net", "net_pay", "base", "base_salary",
                     "bonus", "income", "balance", "wage", "wages", "pay", "arrears", "debt"),
                    ("financial", "money_anchored", False)),
    **dict.fromkeys(("diagnosis", "condition", "medication", "medications", "meds", "allergy", "allergies",
                     "reason", "issue", "symptoms"), ("health", "health_term_anchored", False)),
}  # fmt: skip
# A person's column: money and health cells count only in a table of people.
_PERSON_COLUMNS = frozenset(
    {"name", "full_name", "full name", "employee", "employee_name", "first_name", "last_name", "surname",
     "patient", "patient_name", "pupil", "student", "customer", "customer_name", "tenant", "client", "member"}
)  # fmt: skip
_TABLE_DELIMITERS = (",", "\t", "|", ";")


def _scan_table_columns(text: str, scan: Scan, taken: list[tuple[int, int]]) -> None:
    """Cells under headers that name what they hold ("name,sort_code,account_no,gross_monthly")."""
    lines = text.split("\n")
    offsets = list(accumulate([0] + [len(line) + 1 for line in lines]))
    for h, header in enumerate(lines[:-1]):
        delimiter = max(_TABLE_DELIMITERS, key=header.count)
        if header.count(delimiter) < 2:
            continue
        names = [field.strip(" *#`").lower() for field in header.strip(" |").split(delimiter)]
        columns = {k: _COLUMN_KINDS[name] for k, name in enumerate(names) if name in _COLUMN_KINDS}
        if not columns:
            continue
        people = not _PERSON_COLUMNS.isdisjoint(names)
        if _TEST_DATA_RE.search(scan.lowered, max(0, offsets[h] - 200), offsets[h]):
            return  # "generate sample rows for these columns": test data
        for r in range(h + 1, len(lines)):
            row = lines[r]
            if row.count(delimiter) < 2:
                break
            stripped = row.strip(" |")
            if set(stripped) <= set("-:| +="):
                continue  # a markdown table's rule
            cells = stripped.split(delimiter)
            if len(cells) != len(names):
                continue
            base = offsets[r] + (len(row) - len(row.lstrip(" |")))
            position = base
            for k, cell in enumerate(cells):
                kind = columns.get(k)
                value = cell.strip()
                if kind is not None and value and len(value) >= 2:
                    category, evidence_kind, strong = kind
                    start = position + cell.find(value)
                    end = start + len(value)
                    usable = (
                        not _looks_placeholder(value)
                        and not _MASKED_RE.fullmatch(value)
                        and not _overlaps(taken, start, end)
                        and not _overlaps(scan.spans(), start, end)
                    )
                    if category in ("financial", "health"):
                        usable = (
                            usable and people and (category == "health" or any(c.isdigit() for c in value))
                        )
                    elif category in ("credential",):
                        usable = usable and len(value) >= 4 and value.lower() not in _COMMON
                    else:
                        digits = _digits(value)
                        usable = usable and len(digits) >= 4 and len(set(digits)) > 1
                    if usable:
                        scan.add(category, start, end, evidence_kind, strong)
                position += len(cell) + len(delimiter)


_PASSWORD_BRACKETED_RE = re.compile(
    r"\b(?:password|passwd|pw|pwd|passcode)\b[^()\n]{0,60}\(([^\s()]{6,64})\)", re.IGNORECASE
)
# "period's 10 days late": a late period, someone's
_LATE_PERIOD_RE = re.compile(
    r"\b(?:my\s+|her\s+)?period(?:'s|’s|\s+is)\s+(?:\w+\s+){0,3}late\b", re.IGNORECASE
)
_WIFI_QR_RE = re.compile(r"WIFI:[^\n]*?[:;]P:((?:\\.|[^;\\\n])+);")
# Roles that a full name may follow with no colon ("client Amanuel Tesfaye", "patient Rosa Diaz").
_ROLE_WORDS = frozenset(
    {"client", "patient", "pupil", "student", "tenant", "employee", "applicant", "candidate", "claimant",
     "resident", "customer", "member", "passenger", "beneficiary", "defendant", "plaintiff", "victim"}
)  # fmt: skip
_ROLE_NAME_RE = re.compile(r"[ \t]+([A-ZÀ-Ý][a-zà-ÿ'’-]+(?:[ \t][A-ZÀ-Ý][a-zà-ÿ'’-]+){1,2})\b(?![ \t][A-Z])")
# Health words in figures of speech.
_HEALTH_IDIOM_RE = re.compile(
    r"(?:giving|gave|give|gonna\s+give)\s+me\s+a\s+heart\s+attack|"
    r"allergic\s+to\s+(?:mondays?|work|mornings?|people|exercise|maths?|effort|adulting|responsibility|"
    r"cardio|homework|meetings?)\b"
)
# Public offices, capitalised right before a name.
_OFFICIAL_BEFORE_RE = re.compile(
    r"\b(?:President|Vice[- ]President|Superintendent|Councillor|Councilman|Councilwoman|Cllr\.?|Mayor|"
    r"Senator|Sen\.|Governor|Gov\.|Minister|Secretary|Commissioner|Chair(?:man|woman|person)?|"
    r"Representative|Rep\.|Congressman|Congresswoman|Judge|Justice|Sheriff|Alderman|Alderwoman|Trustee|"
    r"Leader|Speaker|MP|MEP|Ambassador)(?:,)?\s+(?:Dr\.?\s+)?$"
)
_OFFICIAL_GATE = frozenset(
    {"president", "vice", "superintendent", "councillor", "councilman", "councilwoman", "cllr", "mayor",
     "senator", "sen", "governor", "gov", "minister", "secretary", "commissioner", "chair", "chairman",
     "chairwoman", "chairperson", "representative", "rep", "congressman", "congresswoman", "judge",
     "justice", "sheriff", "alderman", "alderwoman", "trustee", "leader", "speaker", "mp", "mep",
     "ambassador"}
)  # fmt: skip
# The writer declaring that the people and values in the text are not real.
_FICTION_DECLARATION_RE = re.compile(
    r"\b(?:fictional|fictitious|fiktiv\w*|erfunden\w*|ficticio|ficticia|fictif|fictive"
    r"|made[- ]up\s+(?:\w+\s+)?(?:details|names?|numbers?|values?|data|candidate|person|patient|client|"
    r"character|example|case)|use\s+made[- ]up"
    r"|composite\s+(?:case|client|character|patient|profile)|no\s+real\s+(?:person|individual|patient|client|"
    r"people|names?)|mannequin|mock\s+trial|let'?s\s+(?:practi[cs]e|do\s+an\s+improv)|improv"
    r"|you(?:'re|\s+are)\s+(?:a|the)\s+(?:patient|customer|client|caller|candidate|tenant|scammer)\s+"
    r"(?:called|named|who))\b"
)
_FICTION_DECLARATION_CUES = (
    "fictional", "fictitious", "fictif", "fictive", "ficticio", "ficticia", "fiktiv", "erfunden", "made up",
    "made-up", "composite", "no real", "mannequin", "mock trial", "practi", "improv", "you're a",
    "you are a", "you're the", "you are the",
)  # fmt: skip
# A word every `_FICTION_FRAME_RE` match holds: a set test before the pattern runs.
_FICTION_WORDS = frozenset(
    {"novel", "story", "screenplay", "book", "script", "game", "play", "film", "movie", "campaign",
     "comic", "fanfic", "thriller", "mystery", "whodunit", "sitcom", "episode", "sketch", "manuscript",
     "rpg", "larp", "character", "characters", "character's", "fictional", "protagonist",
     "villain", "antagonist", "npc", "backstory", "design", "worldbuilding", "sheet", "heroine", "tale",
     "scene", "poem", "novel's", "story's", "book's", "game's"}
)  # fmt: skip


def _in_fiction(text: str, start: int) -> bool:
    """Return True when the sentence before ``start`` frames it as fiction."""
    sentence_start = max(text.rfind(".", 0, start - 1), text.rfind("\n", 0, start), start - 120)
    return bool(_FICTION_FRAME_RE.search(text, max(0, sentence_start), start))


# Ofcom's numbers for drama (07700 900000-900999 and the ranges below): real-looking, never
# anyone's. People also use them as realistic examples, so only a word of fiction nearby
# makes them one.
_FICTION_CUE_RE = re.compile(
    r"drama|film|movie|fiction|fake|prop\b|script|novel|story|tv show|scene|placeholder|example|"
    r"dummy|sample|mock"
)


# Ofcom's drama ranges: a thousand numbers each in London, Leeds, Sheffield, Nottingham,
# Leicester, Bristol, Reading, Birmingham, Edinburgh, Glasgow, Liverpool, Manchester, Tyneside,
# Belfast, Cardiff, the no-area 01632 block, mobiles, freephone, premium and 03 numbers.
_DRAMA_PREFIXES = (
    "2079460", "1134960", "1144960", "1154960", "1164960", "1174960", "1184960", "1214960",
    "1314960", "1414960", "1514960", "1614960", "1914980", "2890180", "2920180", "1632960",
    "7700900", "8081570", "9098790", "3069990",
)  # fmt: skip


def _drama_number(digits: str) -> bool:
    national = digits[2:] if digits.startswith("44") else digits.lstrip("0")
    return len(national) == 10 and national.startswith(_DRAMA_PREFIXES)


def _luhn_prefix(raw: str) -> int:
    """Return the length of the longest prefix of `raw`, cut before a separator, that holds
    13 to 19 digits and passes Luhn; 0 when there is none."""
    for cut in range(len(raw) - 1, 0, -1):
        if not raw[cut].isdigit() and raw[cut - 1].isdigit():
            digits = _digits(raw[:cut])
            if len(digits) < 13:
                return 0
            if len(digits) <= 19 and luhn_valid(digits) and card_network(digits):
                return cut
    return 0


# "Pedido nº 405-7781123-662", "Auftragsnummer 4829 1177 0035", "tracking 1Z 999 AA1 01 2345
# 6784": an order's, a parcel's or a booking's number, nobody's phone or card.
_REFERENCE_RE = re.compile(
    r"(?:order|pedido|bestellung|bestellnummer|auftragsnummer|auftrag|commande|ordine|encomenda|"
    r"zamówienie|bestelling|tracking|seguimiento|sendungsnummer|suivi|tracciamento|rastreio|"
    r"buchungsnummer|booking\s+ref(?:erence)?|reservation|reserva|invoice|rechnung|facture|factura|"
    r"fattura|ticket|case|claim|parcel|shipment|awb|waybill|article|artikelnummer|model|part|product|"
    r"item|sku|catalog(?:ue)?)"
    r"(?:\s+(?:no|number|nr|n[º°o]|num|id|#|ref|code))?\.?\s*[:#]?\s*((?:[A-Z]{0,3}[\d][\d .-]{5,24}\d))",
    re.IGNORECASE,
)
_REFERENCE_WORDS = frozenset(
    {"order", "pedido", "bestellung", "bestellnummer", "auftragsnummer", "auftrag", "commande", "ordine",
     "encomenda", "zamówienie", "bestelling", "tracking", "seguimiento", "sendungsnummer", "suivi",
     "tracciamento", "rastreio", "buchungsnummer", "booking", "reservation", "reserva", "invoice",
     "rechnung", "facture", "factura", "fattura", "ticket", "case", "claim", "parcel", "shipment", "awb",
     "waybill", "article", "artikelnummer", "model", "part", "product", "item", "sku", "catalog",
     "catalogue"}
)  # fmt: skip
_UPS_TRACKING_RE = re.compile(r"\b1Z\s?[0-9A-Z]{3}\s?[0-9A-Z]{3}\s?[0-9A-Z]{2}\s?\d{4}\s?\d{4}\b")
# "Powerball winning numbers: 20 26 32 38 58": a draw, not a phone number.
_LOTTERY_RE = re.compile(
    r"lotto|lottery|powerball|euromillions|mega millions|winning numbers|lotería|loterie"
)
_LOTTERY_WORDS = frozenset(
    {"lotto", "lottery", "powerball", "euromillions", "mega", "winning", "lotería", "loterie"}
)
# EAN/GTIN/UPC barcodes when the text says so.
_BARCODE_WORDS = frozenset({"ean", "gtin", "upc", "barcode", "isbn", "sku"})
_BARCODE_RE = re.compile(r"(?<![\d-])(\d{12,14})(?![\d-])")


def _gtin_valid(digits: str) -> bool:
    total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(reversed(digits[:-1]), 1))
    return (10 - total % 10) % 10 == int(digits[-1])


def _claim_references(text: str, scan: Scan, lowered: str, taken: list[tuple[int, int]]) -> None:
    """Claim order, parcel, booking and barcode numbers and lottery draws before the number
    readers see them: no evidence, no signal, just not a phone or a card."""
    tokens = scan.tokens
    starts = [scan.token_starts[i] for i in _positions(scan, _REFERENCE_WORDS)]
    for m in _anchored(_REFERENCE_RE, text, starts):
        if not _overlaps(taken, *m.span(1)):
            taken.append(m.span(1))
    if "1Z" in text:
        taken.extend(m.span() for m in _UPS_TRACKING_RE.finditer(text))
    if not _LOTTERY_WORDS.isdisjoint(tokens) and _LOTTERY_RE.search(lowered):
        taken.extend(m.span() for m in re.finditer(r"\d{1,2}(?:[ ,-]+\d{1,2}){4,}", text))
    if not _BARCODE_WORDS.isdisjoint(tokens):
        for m in _BARCODE_RE.finditer(text):
            if _gtin_valid(m.group(1)) and not _overlaps(taken, *m.span(1)):
                taken.append(m.span(1))


def _scan_numbers(text: str, scan: Scan, taken: list[tuple[int, int]], n_digits: int) -> None:
    """Cards, SSNs and phones, in that order so the longest validated reading wins."""
    signals = scan.signals
    # Only a start followed by seven digits (separators allowed) can begin any of
    # these; one cheap match per start spares the long alternations below.
    match7 = _SEVEN_DIGITS_RE.match
    long_starts = [s for s in scan.number_starts if match7(text, s)]
    if not long_starts:
        return
    if n_digits >= 12:
        for m in _anchored(_CARD_RE, text, long_starts):
            start, end = m.span()
            if not _boundary_before(text, start, ".,-") or _overlaps(taken, start, end):
                continue
            raw = m.group()
            digits = _digits(raw)
            if not 12 <= len(digits) <= 19:
                continue
            if not luhn_valid(digits):
                # "6011944323383631 10/27": the run swallowed the expiry's month; a shorter
                # run, cut at a separator, may be the card.
                cut = _luhn_prefix(raw)
                if cut:
                    raw, end = raw[:cut], start + cut
                    digits = _digits(raw)
            card_context = bool(_CONTEXT_CARD_RE.search(_window(text, start, end)))
            if len(digits) == 12 and not card_context:
                continue
            taken.append((start, end))
            if len(set(digits)) == 1:
                signals["card_invalid"] += 1
                continue
            if not luhn_valid(digits):
                if card_context and len(digits) >= 15 and _disclosed_unchecked(scan, start, end):
                    # "card 4532 7781 0093 2246 exp 08/27 keeps getting declined": a mistyped
                    # card is still the writer's card; weaker than one that passes Luhn.
                    scan.add("payment_card", start, end, "card_unverified", False)
                # Count a failed check only for numbers that look like cards.
                elif len(digits) in (15, 16) and (" " in raw or "-" in raw or card_context):
                    signals["card_invalid"] += 1
                continue
            if digits in TEST_CARD_NUMBERS:
                signals["card_test"] += 1
                continue
            if card_network(digits) is None and not card_context:
                if len(digits) == 15:
                    # A 15-digit Luhn-valid number that is no card is IMEI-shaped.
                    scan.add("device_id", start, end, "imei_like", False)
                else:
                    signals["luhn_number"] += 1
                continue
            scan.add("payment_card", start, end, "card", True)
            if card_context:
                signals["card_ctx"] += 1

    if n_digits >= 9 and ("SIN" in text or "nsurance" in text) and _SIN_CONTEXT_RE.search(text):
        # "462 198 375 - will the CRA accept the T4 with this SIN": Canada's social insurance
        # number, three groups of three passing Luhn, with its name anywhere in the text.
        for m in _anchored(_SIN_RE, text, long_starts):
            if _boundary_before(text, m.start(), "-") and not _overlaps(taken, *m.span()):
                digits = _digits(m.group())
                if luhn_valid(digits) and digits[0] not in "08" and len(set(digits)) > 2:
                    taken.append(m.span())
                    scan.add("government_id", m.start(), m.end(), "gov_id", True)
    if n_digits >= 9 and ("-" in text or scan.signals.get("ssn_label")):
        for m in _anchored(_SSN_RE, text, long_starts):
            start, end = m.span()
            if not _boundary_before(text, start, "-") or _overlaps(taken, start, end):
                continue
            raw = m.group()
            sep = m.group(1)
            has_context = bool(_CONTEXT_SSN_RE.search(_window(text, start, end, 50)))
            if sep != "-" and not has_context:
                continue
            if not has_context and _REFERENCE_BEFORE_RE.search(text, max(0, start - 24), start):
                taken.append((start, end))
                signals["ssn_invalid"] += 1  # "part no. 241-88-7065": a reference in the SSN's shape
                continue
            digits = _digits(raw)
            taken.append((start, end))
            if not ssn_valid(digits[:3], digits[3:5], digits[5:]):
                # An ITIN (9XX-7X-XXXX) is a tax ID in the SSN's shape: one with a tax
                # word nearby is a disclosure; without one it stays an invalid SSN.
                if itin_valid(digits[:3], digits[3:5], digits[5:]) and _CONTEXT_ITIN_RE.search(
                    _window(text, start, end, 50)
                ):
                    scan.add("government_id", start, end, "itin", True)
                else:
                    signals["ssn_invalid"] += 1
            elif digits in EXAMPLE_SSNS:
                signals["ssn_example"] += 1
            else:
                scan.add("government_id", start, end, "ssn", True)
                if has_context:
                    signals["ssn_ctx"] += 1

    if n_digits < 7:
        return
    for m in _anchored(_PHONE_RE, text, long_starts):
        start, end = m.span()
        if not _boundary_before(text, start, "+/.-") or _overlaps(taken, start, end):
            continue
        raw = m.group()
        digits = _digits(raw)
        n = len(digits)
        if _DATE_SHAPE_RE.fullmatch(raw) or len(set(digits)) == 1:
            continue
        if _FIVE_FIVE_RE.fullmatch(raw) and _NOT_PHONE_CONTEXT_RE.search(
            text[max(0, start - 25) : start].lower()
        ):
            continue  # "order 71234 55555": a reference in the Indian mobile's shape
        has_context = bool(_CONTEXT_PHONE_RE.search(_window(text, start, end, 30)))
        kind = "phone"
        if raw[0] == "+":
            if not 8 <= n <= 15:
                continue
            if n == 11 and digits[0] == "1" and (digits[1:4] == "555" or digits[4:9] == "55501"):
                signals["phone_fictional"] += 1  # +1 555 ...: no such area code; 555-01XX: fiction's
                taken.append((start, end))
                continue
            kind = "phone_intl"
        elif raw[0] == "0":
            # German mobiles run to twelve digits with the 0 ("0151 2378 4406").
            if not (10 <= n <= 11 or (n in (9, 12) and has_context)):
                continue
            if digits.startswith(("0800", "0808", "0500", "0900")):
                signals["phone_tollfree"] += 1  # UK/EU freephone and premium lines: a business
                taken.append((start, end))
                continue
            if raw.isdigit() and not has_context:
                continue
        elif n in (10, 11):
            if n == 11 and digits[0] != "1" and not has_context:
                continue
            if raw.isdigit() and not has_context:
                continue
            national = digits[-10:]
            area, exchange, line = national[:3], national[3:6], national[6:]
            if area in ("800", "888", "877", "866", "855", "844", "833"):
                signals["phone_tollfree"] += 1
                taken.append((start, end))
                continue
            if (exchange == "555" and "0100" <= line <= "0199") or area == "555":  # 555: no area code
                signals["phone_fictional"] += 1
                taken.append((start, end))
                continue
            if area[0] in "01" and not has_context:
                continue
        elif n == 7:
            if not has_context:
                continue
            if digits[:3] == "555":
                signals["phone_fictional"] += 1
                continue
            kind = "phone_local"
        else:
            continue
        taken.append((start, end))
        if _drama_number(digits) and _FICTION_CUE_RE.search(_window(text, start, end, 80).lower()):
            signals["phone_fictional"] += 1
            continue
        scan.add("phone", start, end, kind, True)
        if has_context:
            signals["phone_ctx"] += 1
    # International shapes the table above does not know ("374 780 163",
    # "(64) 3591-3246", "056 590 36 33"), only with a phone word close by.
    for m in _anchored(_PHONE_GENERIC_RE, text, long_starts):
        start, end = m.span()
        if not _boundary_before(text, start, "+/.-,$€£") or _overlaps(taken, start, end):
            continue
        raw = m.group()
        digits = _digits(raw)
        if not 7 <= len(digits) <= 12 or len(set(digits)) == 1 or _DATE_SHAPE_RE.fullmatch(raw):
            continue
        before = text[max(0, start - 40) : start].lower()
        if not _CONTEXT_PHONE_RE.search(before) or _NOT_PHONE_CONTEXT_RE.search(before[-25:]):
            continue
        taken.append((start, end))
        if digits.startswith("5550") and len(digits) == 7 and digits[4] == "1":
            signals["phone_fictional"] += 1
            continue
        scan.add("phone", start, end, "phone_generic", True)
        signals["phone_ctx"] += 1


# Numbers read out or dictated ("oh seven nine one one ...", "four five five six, two seven
# ..."): a run of digit words is checked as the number it spells.
_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "three": "3",
    "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_SPOKEN_SEPARATORS = frozenset({"dash", "hyphen", "space"})
_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|oh"
)
# "the test was negative", "test came back positive": a test's outcome, a medical one.
_TEST_OUTCOMES = frozenset({"negative", "positive", "inconclusive"})
# Words before "test" that make it a medical test, not test data.
_MEDICAL_TEST_WORDS = frozenset(
    {"blood", "covid", "pregnancy", "preg", "drug", "urine", "lab", "hiv", "sti", "std", "genetic", "dna",
     "a1c", "glucose", "allergy", "eye", "hearing", "stress", "pcr", "rapid", "antigen", "skin", "sweat",
     "breath", "pap", "tb", "thyroid", "liver", "kidney", "cholesterol", "iron", "hormone", "fertility",
     "paternity", "flow", "swab", "biopsy", "screening", "diabetes", "tolerance", "function"}
)  # fmt: skip
# Words after a spoken number that make a distance or a count, not a street's name.
_NOT_STREET_NAMES = frozenset(
    {"minute", "minutes", "mile", "miles", "hour", "hours", "star", "way", "block", "blocks", "day", "days",
     "year", "years", "week", "weeks", "lane", "lanes", "car", "bus", "long", "short", "more", "less",
     "times", "steps", "step", "feet", "foot", "meter", "meters", "km", "story", "storey", "mph", "percent"}
)  # fmt: skip
_NUMBER_WORD_SET = frozenset(_NUMBER_WORDS.split("|"))
_SPOKEN_GATE = frozenset(_DIGIT_WORDS) - {"o", "oh", "one"}
_SPOKEN_EMAIL_RE = re.compile(
    r"\b([a-z0-9]+(?:\s+(?:dot|underscore)\s+[a-z0-9]+)*)\s+at\s+([a-z0-9-]+(?:\s+dot\s+[a-z0-9-]+)*"
    r"\s+dot\s+(?:com|net|org|edu|gov|io|co|uk|de|fr|nl|es|it|ca|au|in|me|info|biz))\b"
)


# "... code is", "my pin's": a code's label right before the digits read out.
_SPOKEN_CODE_BEFORE_RE = re.compile(
    r"(?:code|otp|pin|passcode|password)(?:'s|\s+is|\s+was|\s*:)?\s*(?:it's\s+|like\s+)?$"
)


def _spoken_runs(scan: Scan, min_digits: int = 7) -> Iterator[tuple[int, int, str]]:
    """Yield (first token, last token, digits) for each run of ``min_digits`` or more digit words."""
    tokens = scan.tokens
    i, n = 0, len(tokens)
    while i < n:
        if tokens[i] not in _DIGIT_WORDS or (
            tokens[i] in ("o", "oh") and not (i + 1 < n and tokens[i + 1] in _DIGIT_WORDS)
        ):
            i += 1  # "oh" opens a number only before another digit word ("oh seven eight ...")
            continue
        digits, j, last = [], i, i
        while j < n:
            token = tokens[j]
            if token in _DIGIT_WORDS:
                digits.append(_DIGIT_WORDS[token])
                last = j
            elif token in ("double", "triple") and j + 1 < n and tokens[j + 1] in _DIGIT_WORDS:
                digits.append(_DIGIT_WORDS[tokens[j + 1]] * (2 if token == "double" else 3))
                j, last = j + 1, j + 1
            elif token not in _SPOKEN_SEPARATORS:
                break
            j += 1
        number = "".join(digits)
        if len(number) >= min_digits:
            yield i, last, number
        i = max(j, i + 1)


def _scan_person_dates(text: str, scan: Scan, taken: list[tuple[int, int]]) -> None:
    """Dates right after a person word or before "baby"; each tried only at a date's first token."""
    tokens = scan.tokens
    starts = scan.token_starts
    candidates = scan.numeric_tokens + _positions(scan, _MONTH_TOKENS)
    for i in candidates:
        m = _DATE_AT_RE.match(text, starts[i])
        if not m or _overlaps(taken, *m.span()):
            continue
        after_person = (
            i > 0
            and tokens[i - 1] in _PERSON_DATE_WORDS
            and _DATE_GAP_RE.fullmatch(text, scan.token_end(i - 1), m.start()) is not None
        )
        if not after_person and not _BABY_AFTER_RE.match(text, m.end()):
            continue
        year = _year_of(m.group())
        if year is not None and 1925 <= year <= 2015:
            scan.add("date_of_birth", m.start(), m.end(), "dob", True)
            taken.append(m.span())


# A house number read out ("four seventeen", "one forty two", "twelve hundred"), one to three
# name words, and a street suffix: "four seventeen west maple street".
_SPOKEN_STREET_RE = re.compile(
    rf"\b((?:(?:{_NUMBER_WORDS})[\s-]+){{1,4}}(?:[a-z][a-z'-]*\s+){{1,3}}?"
    r"(?:street|avenue|road|drive|lane|boulevard|court|way|place|terrace|circle|parkway))\b"
)
_SPOKEN_STREET_SUFFIXES = frozenset(
    {"street", "avenue", "road", "drive", "lane", "boulevard", "court", "way", "place", "terrace", "circle",
     "parkway"}
)  # fmt: skip


def _scan_spoken(text: str, scan: Scan) -> None:
    lowered = scan.lowered
    if (
        not _SPOKEN_STREET_SUFFIXES.isdisjoint(scan.tokens)
        and not _NUMBER_WORD_SET.isdisjoint(scan.tokens)
        and (scan.signals.get("address_cue") or scan.signals.get("unit") or "locverb" in scan.kind_positions)
    ):
        # Only where the text speaks of an address: "a ten minute drive" is no street.
        matches = (
            m
            for start, end in _windows(scan, _positions(scan, _SPOKEN_STREET_SUFFIXES), 80, 0)
            for m in _SPOKEN_STREET_RE.finditer(lowered, start, end)
        )
        for m in matches:
            words = m.group(1).split()
            names = [w for w in words[1:-1] if w not in _NUMBER_WORD_SET]
            if (
                words[0] != "oh"
                and names
                and _STREET_STOP.isdisjoint(names)
                and _NOT_STREET_NAMES.isdisjoint(names)
                and not _public_place_before(scan, m.start(1))
            ):
                scan.add("address", m.start(1), m.end(1), "street_address", True)
    if " at " in lowered and " dot " in lowered:
        for m in _SPOKEN_EMAIL_RE.finditer(lowered):
            if m.group(1) not in _COMMON or " dot " in m.group(1):
                scan.add("email", m.start(), m.end(), "email_spoken", True)
    if len(_SPOKEN_GATE.intersection(scan.tokens)) < 2:
        return
    for first, last, digits in _spoken_runs(scan):
        start, end = scan.token_starts[first], scan.token_end(last)
        window = _window(lowered, start, end, 60)
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and card_network(digits):
            scan.add("payment_card", start, end, "card_spoken", True)
        elif (
            15 <= len(digits) <= 16
            and _CONTEXT_CARD_RE.search(window)
            and _disclosed_unchecked(scan, start, end)
        ):
            scan.add("payment_card", start, end, "card_unverified", False)
        elif (
            len(digits) == 9
            and _CONTEXT_SSN_RE.search(window)
            and ssn_valid(digits[:3], digits[3:5], digits[5:])
        ):
            scan.add("government_id", start, end, "ssn_spoken", True)
        elif 7 <= len(digits) <= 15 and _CONTEXT_PHONE_RE.search(window):
            scan.add("phone", start, end, "phone_spoken", True)
    if "code" in scan.lowered or "pin" in scan.tokens:
        # "the verification code is seven seven zero, two one four": a code read out.
        for first, last, digits in _spoken_runs(scan, 4):
            start, end = scan.token_starts[first], scan.token_end(last)
            if len(digits) <= 8 and _SPOKEN_CODE_BEFORE_RE.search(lowered, max(0, start - 40), start):
                scan.add("credential", start, end, "otp_spoken", True)


def _scan_iban(text: str, scan: Scan, taken: list[tuple[int, int]]) -> None:
    signals = scan.signals
    for m in _IBAN_RE.finditer(text):
        start = m.start()
        if not _boundary_before(text, start):
            continue
        raw = m.group()
        compact = raw.replace(" ", "").upper()
        expected = IBAN_LENGTHS.get(compact[:2])
        if expected is None:
            continue
        if len(compact) < expected:
            signals["iban_invalid"] += 1
            continue
        # A greedy match may run into a following word: cut at the country length.
        count, end = 0, start
        for offset, char in enumerate(raw):
            if char != " ":
                count += 1
            if count == expected:
                end = start + offset + 1
                break
        if end < len(text) and text[end].isalnum():
            signals["iban_invalid"] += 1
            continue
        candidate = compact[:expected]
        if not iban_valid(candidate):
            if (
                _IBAN_LABEL_RE.search(scan.lowered, max(0, start - 40), start)
                and _disclosed_unchecked(scan, start, end)
                and not _organisation_before(scan, start)
            ):
                # "meine IBAN ist DE72 4306 ...": a labelled account the writer gives as theirs,
                # with a check digit mistyped.
                taken.append((start, end))
                scan.add("bank_account", start, end, "iban_unverified", False)
            else:
                signals["iban_invalid"] += 1
            continue
        taken.append((start, end))
        if _organisation_before(scan, start):
            continue  # "Deutsches Rotes Kreuz e.V., IBAN DE63 ...": an organisation's account
        if candidate in EXAMPLE_IBANS or _example_nearby(text, start):
            signals["iban_example"] += 1
        else:
            scan.add("bank_account", start, end, "iban", True)


# Keys printed in vendors' documentation for everyone to copy.
_DOCUMENTED_KEYS = frozenset(
    {"AKIAIOSFODNN7EXAMPLE", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "pk_test_TYooMQauvdEDq54NiTphI7jx",
     "sk_test_BQokikJOvBiI2HlWgH4olfQ2", "pk_test_6pRNASCoBOKtIshFeQd4XMUh"}
)  # fmt: skip


def _b64url_text(segment: str) -> str:
    """Decode one base64url segment of a JWT to text; "" when it is not one."""
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode("utf-8", "replace")
    except (ValueError, binascii.Error):
        return ""


def _example_jwt(token: str) -> bool:
    """Return True for the token documentation shows (its claims name "John Doe")."""
    claims = _b64url_text(token.split(".")[1])
    return "John Doe" in claims or "Jane Doe" in claims


def _organisation_before(scan: Scan, start: int) -> bool:
    """An organisation's legal form in the 80 characters before, and no person word there."""
    window = scan.text[max(0, start - 80) : start]
    words = _TOKEN_RE.findall(window.lower())
    if not _COMPANY_FORM_RE.search(window) and _COMPANY_SUFFIXES.isdisjoint(words):
        return False
    return _PERSON_WORDS_BUT_ORGANISATIONS.isdisjoint(words)


def _scan_keys(text: str, scan: Scan) -> None:
    signals = scan.signals
    # Prefixes hold no whitespace, so none can straddle two chunks joined by a newline.
    if scan.long_chunks and any(map("\n".join(scan.long_chunks).__contains__, _API_KEY_PREFIXES)):
        for m in _API_KEY_RE.finditer(text):
            if not _boundary_before(text, m.start(), "-"):
                continue
            value = m.group()
            low = value.lower()
            if "xxxx" in low or "your" in low or "example" in low or "....." in value:
                signals["secret_placeholder"] += 1
                continue
            if value in _DOCUMENTED_KEYS:
                signals["secret_placeholder"] += 1  # the key a vendor's documentation prints
                continue
            scan.add("credential", m.start(), m.end(), "api_key", True)
            if "_test_" in value:
                signals["api_key_test"] += 1
    if "-----BEGIN" in text:
        for m in _PEM_RE.finditer(text):
            scan.add("credential", m.start(), m.end(), "private_key", True)
    if scan.long_chunks and "eyJ" in text:
        for m in _JWT_RE.finditer(text):
            if _example_jwt(m.group()):
                signals["secret_placeholder"] += 1
                scan.kind_spans.setdefault("example_secret", []).append(m.span())
                continue
            scan.add("credential", m.start(), m.end(), "jwt", True)
    if " -p" in text or "--pass" in text or " -u " in text or "--user " in text:
        for m in _CLI_PASSWORD_RE.finditer(text):
            if _complex_secret(m.group(1)):
                scan.add("credential", m.start(1), m.end(1), "cli_password", True)
    if "://" in text:
        for m in _URL_CRED_RE.finditer(text):
            password = m.group(2)
            if _secret_value_ok(password) and password[0] not in "${<%":
                scan.add("credential", m.start(2), m.end(2), "url_credentials", True)
            else:
                signals["secret_placeholder"] += 1


def _high_entropy_candidates(text: str, scan: Scan) -> Iterator[tuple[int, int, str]]:
    """Yield (start, end, value) of 20+ character key-alphabet runs inside long chunks."""
    position = 0
    for chunk in scan.long_chunks:
        offset = text.find(chunk, position)
        position = offset + len(chunk)
        for m in _HIGH_ENTROPY_RE.finditer(chunk):
            start = offset + m.start()
            if _boundary_before(text, start, "/+=.-"):
                yield start, offset + m.end(), m.group()


def _jwt_header_only(value: str) -> bool:
    decoded = _b64url_text(value)
    return '"alg"' in decoded and '"sub"' not in decoded


# An OpenSSH public key's type, right before its base64 body.
_SSH_KEY_TYPE_RE = re.compile(
    r"(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com)\s+$"
)
# Words that make a 0x-prefixed 64-digit hex value a transaction or block hash.
_CHAIN_WORDS = frozenset({"transaction", "tx", "txn", "txid", "txhash", "hash", "etherscan", "block"})


# "which bank does routing number 021000021 belong to", "what bank is ...": a question
# about the bank a routing number names.
_BANK_QUESTION_RE = re.compile(r"\b(?:which|what|whose)\s+bank\b", re.IGNORECASE)


def _scan_high_entropy(text: str, scan: Scan) -> None:
    if not scan.long_chunks:
        return
    taken = scan.spans() + scan.kind_spans.get("example_secret", [])
    for start, end, value in _high_entropy_candidates(text, scan):
        if _overlaps(taken, start, end):
            continue
        body = value.rstrip("=")
        if "=" in body:
            # "request_id=7f3c2a91-...": judge the value after its key (base64 padding aside)
            value = value[body.rfind("=") + 1 :]
            if len(value) < 16:
                continue
        if _UUID_RE.fullmatch(value):
            scan.signals["uuid"] += 1
            continue
        if value.startswith("eyJ") and "." not in value and _jwt_header_only(value):
            continue  # "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9": a token's header, no claims or key
        if value in _DOCUMENTED_KEYS or value == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY":
            scan.signals["secret_placeholder"] += 1
            continue
        if value.startswith("AAAA") and _SSH_KEY_TYPE_RE.search(text, max(0, start - 40), start):
            scan.signals["public_key"] += 1  # "ssh-ed25519 AAAAC3Nza...": a public key, no secret
            continue
        if (
            value[:2] == "0x"
            and len(value) == 66
            and _HEX_RE.fullmatch(value, 2)
            and not _CHAIN_WORDS.isdisjoint(scan.tokens)
        ):
            scan.signals["hex_string"] += 1  # a transaction's hash on a public chain
            continue
        if (
            _HEX_RE.fullmatch(value)
            or _HEX_RE.fullmatch(value.replace("-", ""))
            or (value[:2] == "0x" and len(value) == 42 and _HEX_RE.fullmatch(value, 2))
        ):
            scan.signals["hex_string"] += 1  # "1-65f2a1c3-4e9b0d7a...": a trace id
            continue
        has_upper = any(c.isupper() for c in value)
        has_lower = any(c.islower() for c in value)
        has_digit = any(c.isdigit() for c in value)
        if not (has_upper and has_lower and has_digit) and len(value) < 32:
            continue
        if "/" in value and value.count("/") >= 2 and not has_digit:
            continue  # a path
        if shannon_entropy_bits(value) >= 3.7:
            scan.signals["high_entropy"] += 1


def _scan_devices(text: str, scan: Scan) -> None:
    signals = scan.signals
    if (text.count(":") >= 5 or text.count("-") >= 5) and _MAC_GATE_RE.search(text):
        for m in _MAC_RE.finditer(text):
            if not _boundary_before(text, m.start(), ":-."):
                continue
            compact = m.group().replace(":", "").replace("-", "").replace(".", "").lower()
            if (
                compact in _MAC_PLACEHOLDERS
                or len(set(compact)) <= 2
                or compact.count("0") >= 8  # "02:00:00:00:00:01": a fixture's address
                or compact.startswith(_MAC_DOCUMENTATION_PREFIXES)
            ):
                signals["mac_placeholder"] += 1
                continue
            scan.add("device_id", m.start(), m.end(), "mac", True)
    if text.count(" ") >= 5 and "mac" in scan.lowered:
        # "MAC 00 1A 2B 3C 4D 5E": spaced octets count only after the word MAC and
        # with a hex letter among them, so spaced digit groups stay phone-like.
        # A match holds hex digits and spaces only, so none before the first "mac" can
        # reach past it, and those cannot have "mac" before them: start there.
        for m in _MAC_SPACED_RE.finditer(text, scan.lowered.find("mac")):
            value = m.group()
            compact = value.replace(" ", "").lower()
            if compact.isdigit() or "mac" not in scan.lowered[max(0, m.start() - 40) : m.start()]:
                continue
            if (
                compact in _MAC_PLACEHOLDERS
                or len(set(compact)) <= 2
                or compact.startswith(_MAC_DOCUMENTATION_PREFIXES)
            ):
                signals["mac_placeholder"] += 1
                continue
            scan.add("device_id", m.start(), m.end(), "mac", True)
    if text.count(".") >= 3:
        for m in _anchored(_IPV4_RE, text, scan.number_starts):
            if not _boundary_before(text, m.start(), "."):
                continue
            octets = [int(g) for g in m.groups()]
            if any(o > 255 for o in octets):
                continue
            a, b, c = octets[0], octets[1], octets[2]
            private = (
                a in (0, 10, 127)
                or a >= 224
                or (a == 172 and 16 <= b <= 31)
                or (a == 192 and b == 168)
                or (a == 169 and b == 254)
                or (a == 100 and 64 <= b <= 127)
                or (a, b, c) in ((192, 0, 2), (198, 51, 100), (203, 0, 113))
                or (a == 198 and b in (18, 19))
            )
            if private:
                signals["ipv4_private"] += 1
            elif max(octets) < 10:
                signals["version_like"] += 1
            else:
                scan.add("device_id", m.start(), m.end(), "ipv4_public", False)


def _street_prefix(text: str, suffix_start: int) -> re.Match[str] | None:
    """Return the house number and name words right before a street suffix.

    The leftmost number in the window may belong to something else ("order
    55812 to 9 Harbour View Rd"), so later starts are tried until the words
    in between read like a street name.
    """
    position = max(0, suffix_start - 80)
    while True:
        m = _STREET_PREFIX_RE.search(text, position, suffix_start)
        if m is None:
            return None
        words = m.group(1).split()
        if _boundary_before(text, m.start(), ".,/$€£-") and not any(
            w.lower().strip(".") in _STREET_STOP for w in words
        ):
            return m
        position = m.start() + 1


# "Mayo Clinic is at 200 First St SW", "the museum's address is ...": an address of a
# public place, given with no person in the sentence before it, locates nobody.
_PUBLIC_PLACES = frozenset(
    {"clinic", "hospital", "museum", "university", "college", "embassy", "consulate",
     "restaurant", "cafe", "café", "hotel", "store", "shop", "mall", "headquarters", "hq",
     "church", "cathedral", "temple", "mosque", "synagogue", "library", "stadium", "arena",
     "airport", "station", "courthouse", "theatre", "theater", "gallery", "zoo", "park",
     "pharmacy", "bakery", "bank", "branch", "dmv", "center", "centre", "campus", "hall", "landmark",
     "tower", "building", "office", "offices", "company", "inc", "ltd", "llc", "corp", "plc",
     "corporation", "gmbh", "limited", "cardiology", "dental", "dentistry", "surgery", "practice",
     "registered", "reception", "headoffice", "footer", "handbook", "vendor",
     "supplier", "warehouse", "factory", "depot", "showroom", "workshop", "estate", "plant", "management",
     "realty", "holdings", "associates"}
)  # fmt: skip
_COMPANY_SUFFIXES = frozenset(
    {"ltd", "limited", "plc", "llc", "llp", "inc", "corp", "corporation", "gmbh", "sarl", "bv", "srl",
     "pty", "management", "realty", "holdings", "associates"}
)  # fmt: skip
# Legal forms as companies write them; case matters ("SE" is a company, "se" a Spanish word).
_COMPANY_FORM_RE = re.compile(
    r"\b(?:SE|AG|SA|NV|KG|AB|ASA|Oyj|S\.A\.|S\.L\.|B\.V\.|N\.V\.|e\.V\.|eG|GmbH|UG|S\.p\.A\.|S\.r\.l\.)(?!\w)"
    r"|\bsp\. z o\.o\.|\bs\.r\.o\.|\bLtda\b|\bS\.A\.S\.|\b[A-Z][a-z]+ Co\.(?=[,\s])"
)
# Tokens (lower case) one of `_COMPANY_FORM_RE`'s matches holds, and its dotted forms.
_COMPANY_FORM_TOKENS = frozenset(
    {"se", "ag", "sa", "nv", "kg", "ab", "asa", "oyj", "eg", "gmbh", "ug", "ltda", "co"}
)
_DOTTED_FORMS = ("S.A.", "S.L.", "B.V.", "N.V.", "e.V.", "S.p.A.", "S.r.l.", "sp. z", "s.r.o.")
_PERSON_WORDS = _FIRST_PERSON | _POSSESSIVES | _RELATIONS | frozenset({"he", "she", "they", "him", "them"})
_PERSON_WORDS_BUT_OURS = _PERSON_WORDS - {"our", "we", "us"}
# "Acme Supplies Ltd, their bank details": words an organisation is referred to by as well.
_PERSON_WORDS_BUT_ORGANISATIONS = _PERSON_WORDS_BUT_OURS - {"their", "they", "them"}
# "Rijksmuseum", "Hauptbahnhof", "Stadtbibliothek": a public place in one compound word.
_PUBLIC_COMPOUND_RE = re.compile(
    r"\w{2,}(?:museum|bahnhof|bibliothek|kirche|klinik|klinikum|krankenhaus|rathaus|universität|"
    r"station|stadion|theater|zentrum|ziekenhuis|bibliotheek)\b"
)


_PLACEHOLDER_STREET_WORDS = frozenset(
    {"example", "sample", "dummy", "fake", "test", "placeholder", "any", "anytown", "anystreet"}
)
# "Max Mustermann, Musterstraße 1, 12345 Musterstadt": the German forms' stand-in person.
_PLACEHOLDER_PREFIXES = ("muster", "beispiel", "exemple", "ejemplo", "esempio", "voorbeeld")


def _public_place_before(scan: Scan, start: int) -> bool:
    """Return True when the sentence before `start` names a public place and no person.

    "our café at ...", "our new office is at ...": a place the writer speaks for as an
    organisation is public too, unless they also speak of themselves ("I", "my").
    """
    text = scan.text
    i = bisect_left(scan.token_starts, start)
    window_start = scan.token_starts[max(0, i - 6)] if i else start
    form_ends = _company_form_ends(scan)
    if not _COMPANY_SUFFIXES.isdisjoint(scan.tokens[max(0, i - 6) : i]) or (
        form_ends and any(window_start <= end <= start for end in form_ends)
    ):
        return True  # "Brightlane Ltd, 10 Finsbury Square", "Zalando SE, ...": the company's address
    lo = max(0, start - 160)  # ten tokens back at most: no need to search the whole text
    sentence_start = max(
        text.rfind(".", lo, start - 1), text.rfind("\n", lo, start), text.rfind("!", lo, start), lo - 1
    )
    first = bisect_left(scan.token_starts, sentence_start + 1, max(0, i - 10), i)
    before = scan.tokens[first:i]
    span_start = scan.token_starts[first] if first < i else start
    if "'" in scan.lowered[span_start:start]:
        before = [token.removesuffix("'s") for token in before]  # "our bakery's"
    if _PUBLIC_PLACES.isdisjoint(before) and not _PUBLIC_COMPOUND_RE.search(scan.lowered, span_start, start):
        return False
    if _PERSON_WORDS.isdisjoint(before):
        return True
    ours = {before[k + 1] for k in range(len(before) - 1) if before[k] == "our"}
    ours |= {before[k + 2] for k in range(len(before) - 2) if before[k] == "our"}
    return not _PUBLIC_PLACES.isdisjoint(ours) and _PERSON_WORDS_BUT_OURS.isdisjoint(before)


def _scan_addresses(text: str, scan: Scan, lowered: str) -> None:
    signals = scan.signals
    tokens = scan.tokens
    landmarks = scan.kind_spans.get("landmark", [])
    signals["address_landmark"] = len(landmarks)
    suffixes = _STREET_SUFFIXES.intersection(tokens)
    # Right to left, so "9 Harbour View Rd" wins over its prefix "9 Harbour View".
    suffix_positions = list(compress(count(), map(suffixes.__contains__, tokens))) if suffixes else []
    streets_found: list[tuple[int, int]] = []
    for i in reversed(suffix_positions):
        tok = tokens[i]
        if i == 0:
            continue
        suffix_start = scan.token_starts[i]
        m = _street_prefix(text, suffix_start)
        if not m:
            # "on Pine Road", "the Shell station on Oak Street": a named street, no number.
            prev_start = scan.token_starts[i - 1]
            if (
                text[prev_start : prev_start + 1].isupper()
                and tokens[i - 1] not in _STREET_STOP
                and text[suffix_start : suffix_start + 1].isupper()
            ):
                if _public_place_before(scan, prev_start):
                    signals["address_public_place"] += 1
                    continue
                scan.add("location", prev_start, scan.token_end(i), "street_name", False)
            continue
        words = m.group(1).split()
        strong_suffix = tok in _STREET_SUFFIX_STRONG
        lowercase_name = not words[0][:1].isupper() and not words[0][:1].isdigit()
        if lowercase_name and (not strong_suffix or tok in ("st", "dr", "av")):
            continue
        end = scan.token_end(i)
        if end < len(text) and text[end] == "." and tok in ("st", "ave", "rd", "blvd", "dr", "ln"):
            end += 1
        if landmarks and _overlaps(landmarks, m.start(), end):
            continue
        if _overlaps(streets_found, m.start(), end):
            continue
        streets_found.append((m.start(), end))
        if _public_place_before(scan, m.start()):
            signals["address_public_place"] += 1
            continue
        if not _PLACEHOLDER_STREET_WORDS.isdisjoint(m.group(1).lower().split()):
            signals["address_placeholder"] += 1  # "1 Example Way", "123 Fake Street"
            continue
        scan.add("address", m.start(), end, "street_address", True)
    for i in scan.numeric_tokens:
        # "Hauptstraße 12", "Keizersgracht 123": the suffix word precedes the number;
        # "77 Lindenstraße" (as people also write it) puts the number first.
        prev = tokens[i - 1] if i else ""
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if (
            len(prev) > 4
            and prev.endswith(_EU_STREET_SUFFIXES)
            and (prev not in _EU_STREET_SUFFIXES or (i > 1 and text[scan.token_starts[i - 2]].isupper()))
        ):
            # "Platz 45" alone (a seat) is no street; "Potsdamer Platz 1" is.
            start = scan.token_starts[i - 1]
            if text[start : start + 1].isupper() and _EU_NUMBER_RE.match(text, scan.token_end(i - 1)):
                if _public_place_before(scan, start):
                    signals["address_public_place"] += 1  # "Our Berlin office is at Friedrichstraße 68"
                    continue
                scan.add("address", start, scan.token_end(i), "street_address", True)
        elif len(nxt) > 4 and nxt.endswith(_EU_STREET_SUFFIXES) and len(tokens[i]) <= 4:
            nxt_start = scan.token_starts[i + 1]
            if text[nxt_start : nxt_start + 1].isupper() and nxt_start - scan.token_end(i) == 1:
                if _public_place_before(scan, scan.token_starts[i]):
                    signals["address_public_place"] += 1
                    continue
                scan.add("address", scan.token_starts[i], scan.token_end(i + 1), "street_address", True)
    if signals.get("unit"):
        # "Edeby 55\n Apt. 297", "Pagari 18 Suite 932": a name and a house number right before
        # an apartment or suite is a street address in the order most of Europe writes it.
        taken_streets = [(e.start, e.end) for e in scan.evidence if e.category == "address"]
        for m in _street_before_units(scan):
            words = [w.lower().strip(".") for w in m.group(1).split()[:-1]]
            if (
                _overlaps(taken_streets, *m.span(1))
                or words[0] in _NAME_STOP
                or not _PUBLIC_PLACES.isdisjoint(words)
                or not _ROOM_LABELS.isdisjoint(words)
                or not _NUMBERED_PARTS.isdisjoint(words)
            ):
                continue  # "Building 5 Suite 200", "Chapter 4 Unit 2": a site or a course
            if m.group(1)[:1].islower() and not _NUMBER_BEFORE_RE.search(
                text, max(0, m.start() - 8), m.start()
            ):
                continue  # lower case only after a house number: "2613 avenida praia 1 suite 463"
            if _public_place_before(scan, m.start()):
                signals["address_public_place"] += 1
                continue
            scan.add("address", m.start(1), m.end(1), "street_address", True)
    streets = [(e.start, e.end) for e in scan.evidence if e.category == "address"]
    streets_end = max([e for _, e in streets], default=-1)
    n = len(tokens)
    for i in scan.numeric_tokens:
        tok = tokens[i]
        start = scan.token_starts[i]
        end = start + len(tok)
        if start < streets_end and _overlaps(streets, start, end):
            continue
        if tok.isdigit() and len(tok) in (4, 5):
            prev_start = scan.token_starts[i - 1] if i else -1
            prev = text[prev_start : prev_start + 2] if i else ""
            if len(tok) == 5 and i and len(tokens[i - 1]) == 2 and prev in _US_STATES:
                _add_postcode(scan, prev_start, end)
                continue
            before = text[max(0, start - 3) : start].strip(" \t")
            if (before in ("", ",") or before.endswith((",", "\n"))) and i + 1 < n:
                nxt_start = scan.token_starts[i + 1]
                if (
                    text[nxt_start : nxt_start + 1].isupper()
                    and tokens[i + 1].isalpha()
                    and not text[end:nxt_start].strip(" ")  # "1001,Anita Kowal": a row's id, a cell
                ):
                    _add_postcode(scan, start, scan.token_end(i + 1))
        elif len(tok) == 3 and i and text[start:end].isupper():
            # UK inward code "1AA" after an outward code "SW1A"; Canadian "K1A 0B1".
            outward = text[scan.token_starts[i - 1] : scan.token_end(i - 1)]
            if (
                (
                    tok[1:].isalpha()
                    and 2 <= len(outward) <= 4
                    and outward.isupper()
                    and (outward[0].isalpha() and any(c.isdigit() for c in outward))
                )
                or tok[1].isalpha()
                and tok[2].isdigit()
                and len(outward) == 3
                and outward.isupper()
            ):
                _add_postcode(scan, scan.token_starts[i - 1], end)
        elif len(tok) == 10 and tok[5] == "-" and i:
            prev_start = scan.token_starts[i - 1]
            if text[prev_start : prev_start + 2] in _US_STATES and len(tokens[i - 1]) == 2:
                _add_postcode(scan, prev_start, end)
    streets = [(e.start, e.end) for e in scan.evidence if e.category == "address"]
    for start, end in scan._pending_address:
        if _overlaps(streets, start, end):
            continue
        if landmarks and _overlaps(landmarks, start, end):
            continue
        if _public_place_before(scan, start):
            signals["address_public_place"] += 1
            continue
        scan.add("address", start, end, "street_after_cue", True)
        streets.append((start, end))
    if "box" in lowered and _PO_BOX_GATE_RE.search(lowered):
        for m in _PO_BOX_RE.finditer(text):
            scan.add("address", m.start(), m.end(), "po_box", True)
    if "po " in lowered and ("apo" in lowered or "fpo" in lowered or "dpo" in lowered):
        for start, end in _military_posts(text):
            scan.add("address", start, end, "po_box", True)
    if "," in text and _GPS_GATE_RE.search(text):
        for m in _anchored(_GPS_RE, text, scan.number_starts):
            if _boundary_before(text, m.start(), ".-+"):
                _add_coordinates(scan, m.start(), m.end())
    if "°" in text:
        for m in _GPS_DMS_RE.finditer(text):
            _add_coordinates(scan, m.start(), m.end())


def _add_postcode(scan: Scan, start: int, end: int) -> None:
    """A postcode, unless the sentence gives it for a public place ("Apple's HQ is ..., CA 95014").

    A postcode that closes a street address already found belongs to it ("8255 Station Avenue,
    Burlington, VT 28535" names no station).
    """
    closes_street = any(e.kind == "street_address" and 0 <= start - e.end <= 80 for e in scan.evidence)
    if not closes_street and _public_place_before(scan, start):
        scan.signals["address_public_place"] += 1
        return
    scan.add("address", start, end, "postcode", False)


def _company_form_ends(scan: Scan) -> list[int]:
    """Where the legal forms in the text end ("Zalando SE", "Allegro.pl sp. z o.o."), found once."""
    if scan.company_form_ends is None:
        text = scan.text
        if _COMPANY_FORM_TOKENS.isdisjoint(scan.tokens) and not any(form in text for form in _DOTTED_FORMS):
            scan.company_form_ends = []  # no form's letters anywhere: spare the pattern a long walk
        else:
            scan.company_form_ends = [m.end() for m in _COMPANY_FORM_RE.finditer(text)]
    return scan.company_form_ends


def _named_place_before(scan: Scan, start: int) -> bool:
    """ "the Eiffel Tower (48.8584, ...", "Mount Everest summit 27.98° N": a named place and
    no person (no first name, person word or possessive) in the clause before."""
    text = scan.text
    clause_start = max(text.rfind(".", 0, max(0, start - 1)), text.rfind("\n", 0, start), start - 80)
    before = text[max(0, clause_start + 1) : start]
    words = before.split()
    if "'s" in before or "’s" in before:
        return False
    lowered = [w.strip("(),:;\"'").lower() for w in words]
    if not _PERSON_WORDS.isdisjoint(lowered) or not _FIRST_NAMES.isdisjoint(lowered):
        return False
    # A capitalised word that does not open the clause: a proper name.
    return any(w[:1].isupper() and w.strip("(),:;\"'").isalpha() for w in words[1:])


_PLACE_LABEL_RE = re.compile(r"\s*\((?:the\s+)?([A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,4})\)")
_WHAT_IS_AT_RE = re.compile(r"\bwhat(?:'s|’s|\s+is|\s+was)\s+(?:located\s+)?at\s*$", re.IGNORECASE)


def _add_coordinates(scan: Scan, start: int, end: int) -> None:
    """Coordinates locate someone unless the sentence gives them for a public place.

    "The Eiffel Tower is at 48.8584, 2.2945" locates a landmark; "location pin is 51.52037,
    -0.09865" for drinks at the writer's flat locates the writer.
    """
    landmarks = scan.kind_spans.get("landmark", ())
    sentence_start = max(scan.text.rfind(".", 0, start - 1), scan.text.rfind("\n", 0, start))
    asked = _WHAT_IS_AT_RE.search(scan.text, max(0, start - 30), start)  # "What's at 48.86, 2.33?"
    # "48.8584, 2.2945 (Eiffel Tower)": a place named in brackets right after.
    label = _PLACE_LABEL_RE.match(scan.text, end)
    labelled = bool(
        label and "'s" not in label.group(1) and _PERSON_WORDS.isdisjoint(label.group(1).lower().split())
    )
    if (
        asked
        or labelled
        or _named_place_before(scan, start)
        or _public_place_before(scan, start)
        or any(sentence_start < s < start for s, _ in landmarks)
    ):
        scan.signals["address_public_place"] += 1
        return
    scan.add("location", start, end, "gps", True)


def _military_posts(text: str) -> list[tuple[int, int]]:
    """Return the spans `_MILITARY_POST_RE.finditer(text)` yields, trying only where one can start.

    Every match begins with one of the literals in `_MILITARY_POST_STARTS` or with
    its APO/FPO/DPO line, so `.match()` at those offsets, in order and skipping
    what a match already covered, finds the same spans without running the
    pattern (which has no literal to skip ahead to) at every character.
    """
    cores = [m.start() for m in _MILITARY_POST_CORE_RE.finditer(text)]
    if not cores:
        return []
    last = cores[-1]
    candidates = set(cores)
    for literal in _MILITARY_POST_STARTS:
        at = text.find(literal, 0, last)
        while at >= 0:
            candidates.add(at)
            at = text.find(literal, at + 1, last)
    spans: list[tuple[int, int]] = []
    position = 0
    for start in sorted(candidates):
        if start < position:
            continue
        m = _MILITARY_POST_RE.match(text, start)
        if m:
            spans.append(m.span())
            position = m.end()
    return spans


def _trim_number_end(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop trailing separators a greedy amount regex took ("$2,100," -> "$2,100")."""
    while end > start + 1 and text[end - 1] in ",.'":
        end -= 1
    return start, end


def _scan_money(text: str, scan: Scan) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    # A one-character search per currency sign is far cheaper than a pattern scan.
    for m in _MONEY_RE.finditer(text) if any(map(text.__contains__, _CURRENCY_SIGNS)) else ():
        found.append(_trim_number_end(text, *m.span()))
    tokens = scan.tokens
    if not _CURRENCY_WORDS.isdisjoint(tokens):
        for m in _anchored(_MONEY_SUFFIX_RE, text, scan.number_starts):
            if _boundary_before(text, m.start(), ".,$€£"):
                found.append(m.span())
    if "€" in text or "£" in text:
        # "3 400 € net", "185 000 €": the sign after the amount, as much of Europe writes it
        for m in _anchored(_MONEY_SIGN_AFTER_RE, text, scan.number_starts):
            if not _overlaps(found, *m.span()):
                found.append(m.span())
    if "k" in tokens or any(tokens[i][-1] == "k" for i in scan.numeric_tokens):
        for m in _anchored(_MONEY_K_RE, text, scan.number_starts):
            if _boundary_before(text, m.start(), ".,$€£") and not _overlaps(found, *m.span()):
                found.append(m.span())
    # "$383.3B", "€2.1 billion": an organisation's figures, nobody's pay or balance; "starts at
    # $999", "$8.50 a loaf": a price.
    found = [
        span
        for span in found
        if not _BILLIONS_AFTER_RE.match(text, span[1])
        and not _PRICE_AFTER_RE.match(text, span[1])
        and not _PRICE_BEFORE_RE.search(text, max(0, span[0] - 24), span[0])
    ]
    scan.signals["money"] += len(found)
    return found


_PRICE_AFTER_RE = re.compile(
    r"\s?(?:a|an|per|/|each)\s?(?:loaf|lb|lbs|kg|g|oz|item|unit|piece|dozen|bottle|box|pack|slice|cup|"
    r"portion|serving|pound|kilo|litre|liter|gallon|ticket|seat)\b|\s?each\b",
    re.IGNORECASE,
)
_PRICE_BEFORE_RE = re.compile(
    r"(?:starts?\s+at|starting\s+at|priced\s+at|retails?\s+(?:for|at)|msrp|rrp|list\s+price|costs?\s+us|"
    r"sells?\s+(?:\w+\s+)?(?:at|for))\s*(?:just\s+|only\s+)?$",
    re.IGNORECASE,
)
_BILLIONS_AFTER_RE = re.compile(r"\s?(?:b|bn|billion|billions|trillion|tn|mrd|milliards?)\b", re.IGNORECASE)


# ---------------------------------------------------------------------------
# Label-driven recognisers


_TERSE_GAP_RE = re.compile(r"[\s:=-]*(?:score|rating)?[\s:=-]*(?:is|of|at)?[\s:=-]*")
_NOT_TERSE_AFTER_RE = re.compile(
    r"\s*(?:is|are|was|were|means?|counts?|considered|to|or|vs\.?|versus|enough|range|ranges)\b",
    re.IGNORECASE,
)


def _terse_value(text: str, label_end: int, value_start: int, value_end: int) -> bool:
    """Return True for "label value," ("cibil score 682, ...", "salary 85k, rent 2k"):
    the value right after its label, not a sentence about values ("... 300 is the lowest")."""
    gap = _TERSE_GAP_RE.match(text, label_end, value_start)
    return bool(gap and gap.end() == value_start) and not _NOT_TERSE_AFTER_RE.match(text, value_end)


def _scan_labels(
    text: str, scan: Scan, labels: dict[tuple[int, str], int], taken: list[tuple[int, int]]
) -> None:
    """Read the value after every label phrase found in the token stream."""
    signals = scan.signals
    tokens = scan.tokens
    starts = scan.token_starts
    # The commonest labels come first in the chain of kinds below.
    for (i, kind), size in sorted(labels.items()):
        last = i + size - 1
        pos = starts[last] + len(tokens[last])
        start = starts[i]
        if kind == "l:name_field":
            m = _NAME_FIELD_VALUE_RE.match(text, pos)
            if m and _name_ok(m.group(1), lower_ok=True) and not _TEAM_AFTER_RE.match(text, m.end(1)):
                scan._pending_names.append((m.start(1), m.end(1), "name_field"))
            elif size == 1 and tokens[i] in _ROLE_WORDS and text[start : start + 1].islower():
                # "client Amanuel Tesfaye, Eritrean, ...": a role word, then a full name.
                m = _ROLE_NAME_RE.match(text, pos)
                if m and _name_ok(m.group(1)) and not _TEAM_AFTER_RE.match(text, m.end(1)):
                    words = m.group(1).lower().split()
                    if _COMMON.isdisjoint(words) and _STREET_SUFFIXES.isdisjoint(words):
                        scan._pending_names.append((m.start(1), m.end(1), "name_field"))
        elif kind == "l:name_intro":
            if tokens[i] == "im" and not _GERMAN_MARKERS.isdisjoint(tokens):
                continue  # German "im Vergleich": "in dem", not "I'm"
            _read_name(text, scan, i, pos, "name_intro", allow_lower=True)
        elif kind == "l:unit":
            m = _UNIT_VALUE_RE.match(text, pos)
            if m:
                # "Apt. 297", "Suite 862" belong to a home address; "room 204", "floor 3" are
                # as often a meeting room as a hotel room, so they count apart.
                signals["room" if tokens[i] in _ROOM_LABELS else "unit"] += 1
        elif kind == "l:age":
            m = _AGE_VALUE_RE.match(text, pos)
            if m and 1 <= int(m.group(1)) <= 110:
                signals["age"] += 1
        elif kind == "l:address_cue":
            signals["address_cue"] += 1
            m = _ADDRESS_AFTER_CUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                start1, end1 = m.span(1)
                # Trim trailing prose ("12 Elm Way please").
                words = m.group(1).split()
                while len(words) > 2 and words[-1].islower() and not words[-1][:1].isdigit():
                    end1 = text.rindex(words[-1], start1, end1)
                    end1 = len(text[:end1].rstrip())
                    words.pop()
                if len(words) > 1 and words[1].lower().strip(".,") in _MONTH_TOKENS:
                    continue  # "moved to 22 Aug": a date
                if not any(w.lower().strip(".,") in _STREET_STOP for w in words[:-1]):
                    scan._pending_address.append((start1, end1))
        elif kind == "l:title":
            if text[start : start + 1].isupper():
                m = _TITLE_VALUE_RE.match(text, pos)
                if m and _name_ok(m.group(1)):
                    scan._pending_names.append((m.start(1), m.end(1), "name_title"))
        elif kind == "l:romance_street":
            m = _ROMANCE_VALUE_RE.match(text, start)
            if m and m.group(1) and _VERSION_TAIL_RE.match(text, m.end(1)):
                continue  # "SSO via SCIM 2.0": a version, not a house number
            if m and (m.group(1) or (i > 0 and tokens[i - 1].isdigit())):
                begin = scan.token_starts[i - 1] if not m.group(1) else start
                if _public_place_before(scan, begin):
                    signals["address_public_place"] += 1
                    continue
                end = begin + len(text[begin : m.end()].rstrip(" ,"))
                scan.add("address", begin, end, "street_address", True)
        elif kind == "l:dob":
            m = (
                _DOB_VALUE_RE.match(text, pos)
                or _SPOKEN_DOB_VALUE_RE.match(text, pos)
                or _DOB_LATER_VALUE_RE.match(text, pos)
            )
            if m:
                year = _year_of(m.group(1))
                figures = scan.kind_spans.get("public_figure", ())
                if any(0 <= start - f_end <= 40 for _, f_end in figures):
                    # "Taylor Swift's birthday is December 13, 1989": public knowledge
                    signals["dob_historic"] += 1
                elif _DOB_COMPARISON_RE.search(text, pos, m.start(1)):
                    # "whose date_of_birth is before 1990-01-01": a query's bound, nobody's birthday
                    signals["dob_historic"] += 1
                elif year is not None and (year < 1925 or year > _THIS_YEAR):
                    signals["dob_historic"] += 1  # long ago, or a made-up future ("born 12.03.2311")
                elif not _overlaps(taken, *m.span(1)):
                    scan.add("date_of_birth", m.start(1), m.end(1), "dob", True)
                    taken.append(m.span(1))
        elif kind == "l:account":
            m = _ACCOUNT_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                digits = _digits(m.group(1))
                if 6 <= len(digits) <= 17 and len(set(digits)) > 1:
                    scan.add("bank_account", m.start(1), m.end(1), "account_number", True)
                    taken.append(m.span(1))
        elif kind == "l:password":
            quoted = _PASSWORD_QUOTED_RE.match(text, pos)
            if quoted:
                group = 1 if quoted.group(1) is not None else 2
                value = quoted.group(group)
                if (
                    " " in value.strip()
                    and _secret_value_ok(value)
                    and not _overlaps(taken, *quoted.span(group))
                ):
                    scan.add("credential", quoted.start(group), quoted.end(group), "password", True)
                    taken.append(quoted.span(group))
                    continue
            m = _PASSWORD_VALUE_RE.match(text, pos)
            valued = m is not None
            ok = False
            if m and not _overlaps(taken, *m.span(1)):
                value = m.group(1)
                ok = _secret_value_ok(value)
                if ok and value.isalpha() and value.islower():
                    # "password is usually printed on ...": a plain word followed by prose.
                    after = _PROSE_AFTER_RE.match(text, m.end(1))
                    if after and after.group(1) not in _JOINERS:
                        ok = False
            if not ok:
                m = _PASSWORD_BARE_RE.match(text, pos)
                ok = bool(m and _complex_secret(m.group(1)) and not _overlaps(taken, *m.span(1)))
            if ok and m and _in_fiction(text, m.start(1)):
                signals["secret_placeholder"] += 1  # "in my novel the detective's password is ..."
            elif ok and m:
                scan.add("credential", m.start(1), m.end(1), "password", True)
                taken.append(m.span(1))
            elif valued:
                # "password: changeme", "password is <your password>": a stand-in value.
                signals["secret_placeholder"] += 1
            else:
                # "I forgot my password": the word alone, no value after it.
                signals["password_mention"] += 1
        elif kind == "l:wifi":
            m = _WIFI_VALUE_RE.match(text, pos)
            # A network's name looks like "Xfinity-5G"; a key mixes in symbols, or is named one.
            if (
                m
                and _complex_secret(m.group("value"))
                and (m.group("named") or any(c in "!@#$%^&*+=?~" for c in m.group("value")))
                and not _overlaps(taken, *m.span("value"))
            ):
                scan.add("credential", m.start("value"), m.end("value"), "password", True)
                taken.append(m.span("value"))
        elif kind == "l:pass_short":
            m = _PASS_SHORT_VALUE_RE.match(text, pos)
            if m and _complex_secret(m.group(1)) and not _overlaps(taken, *m.span(1)):
                scan.add("credential", m.start(1), m.end(1), "password", True)
                taken.append(m.span(1))
        elif kind == "l:login":
            m = _LOGIN_VALUE_RE.match(text, pos)
            if m and _complex_secret(m.group(2)) and not _overlaps(taken, *m.span(2)):
                scan.add("credential", m.start(2), m.end(2), "login_pair", True)
                taken.append(m.span(2))
        elif kind == "l:med_context":
            m = _MED_VALUE_RE.match(text, pos)
            if m and m.group(1).lower() not in _COMMON:
                scan._pending_topic.append((i, start, m.end(1), "med_context"))
        elif kind == "l:name_verb":
            m = _NAME_AFTER_RE.match(text, pos)
            if m and len(m.group(1).split()) >= 2 and _name_ok(m.group(1)):
                scan._pending_names.append((m.start(1), m.end(1), "name_after_verb"))
        elif kind == "l:money_label":
            m = _MONEY_LABEL_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                scan._pending_money.append(m.span(1))
                if i == 0 and _terse_value(text, pos, m.start(1), m.end(1)):
                    scan._opening_values.append(m.start(1))
        elif kind == "l:profession_intro":
            if last + 1 < len(tokens) and tokens[last + 1] in lexicon.PROFESSIONS:
                signals["professional_context"] += 1
        elif kind == "l:employer_cue":
            signals["employer_cue"] += 1
        elif kind == "l:pin":
            m = _PIN_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                value = m.group(1)
                if value in _COMMON_PINS and (
                    _example_nearby(text, pos) or not _PIN_STATISTIC_WORDS.isdisjoint(tokens)
                ):
                    # "is PIN 0000 or 1234 more commonly guessed?": the PINs everyone knows,
                    # and nobody's in particular
                    signals["secret_placeholder"] += 1
                else:
                    scan.add("credential", m.start(1), m.end(1), "pin", True)
                    taken.append(m.span(1))
        elif kind == "l:otp":
            m = _OTP_VALUE_RE.match(text, pos)
            if not m or _overlaps(taken, *m.span(1)):
                continue
            if tokens[i] in ("code", "codes") and size == 1:
                before = tokens[i - 1] if i > 0 else ""
                if before in _OTP_NOT_BEFORE:
                    continue
                if not _OTP_TRIGGER_RE.search(_window(text, start, m.end(1), 60)):
                    continue
            scan.add("credential", m.start(1), m.end(1), "otp", True)
            taken.append(m.span(1))
        elif kind == "l:secret":
            if tokens[last] in ("phrase", "mnemonic"):
                m = _SEED_WORDS_RE.match(text, pos)
                if m and _NOT_SEED_WORDS.isdisjoint(m.group(1).replace(",", " ").split()):
                    if not _overlaps(taken, *m.span(1)):
                        scan.add("credential", m.start(1), m.end(1), "seed_phrase", True)
                        taken.append(m.span(1))
                    continue
            regex = _BEARER_VALUE_RE if tokens[last] == "bearer" else _SECRET_VALUE_RE
            m = regex.match(text, pos)
            if not m or _overlaps(taken, *m.span(1)):
                continue
            value = m.group(1)
            if not _secret_value_ok(value) or value.lower().startswith(("os.", "process.", "env")):
                signals["secret_placeholder"] += 1
            elif shannon_entropy_bits(value) < 3.0 and not any(c.isdigit() for c in value):
                signals["secret_lowentropy"] += 1
            else:
                scan.add("credential", m.start(1), m.end(1), "secret_assignment", True)
                taken.append(m.span(1))
        elif kind == "l:imei":
            m = _IMEI_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                digits = _digits(m.group(1))[:15]
                taken.append(m.span(1))
                if digits in _EXAMPLE_IMEIS:
                    signals["imei_invalid"] += 1
                elif len(digits) == 15 and luhn_valid(digits) and len(set(digits)) > 2:
                    scan.add("device_id", m.start(1), m.end(1), "imei", True)
                elif (
                    len(digits) == 15 and len(set(digits)) > 2 and _disclosed_unchecked(scan, start, m.end(1))
                ):
                    # "IMEI is 353917104582266, how do I get it blocked": the writer's phone,
                    # one digit mistyped or not, as with cards
                    scan.add("device_id", m.start(1), m.end(1), "imei_unverified", False)
                else:
                    signals["imei_invalid"] += 1
        elif kind == "l:serial":
            m = _SERIAL_VALUE_RE.match(text, pos)
            if not m or not any(c.isdigit() for c in m.group(1)):
                # "the serial off my router, it's ZTEEQJQ1A0462718": the value follows later
                # in the sentence, after "it's".
                m = _LATER_VALUE_RE.match(text, pos)
                if not m or sum(c.isdigit() for c in m.group(1)) < 2:
                    continue
            if _overlaps(taken, *m.span(1)):
                continue
            value = m.group(1)
            if (
                value.lower() in _COMMON
                or _looks_placeholder(value)
                or (len(set(_digits(value))) <= 1 and len(value) < 8)
            ):
                signals["serial_placeholder"] += 1
                continue
            scan.add("device_id", m.start(1), m.end(1), "serial", True)
            taken.append(m.span(1))
        elif kind.startswith("l:gov"):
            _read_government_id(text, scan, kind, pos, taken)
        elif kind == "l:vat":
            m = _GOV_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                taken.append(m.span(1))
                signals["vat_number"] += 1
        elif kind == "l:license":
            m = _LICENSE_VALUE_RE.match(text, pos)
            if m and sum(c.isdigit() for c in m.group(1)) >= 7 and not _overlaps(taken, *m.span(1)):
                taken.append(m.span(1))
                scan.add("government_id", m.start(1), m.end(1), "gov_id", True)
        elif kind == "l:mrn":
            m = _GOV_VALUE_RE.match(text, pos)
            if m and sum(c.isdigit() for c in m.group(1)) >= 5 and not _overlaps(taken, *m.span(1)):
                scan.add("health", m.start(1), m.end(1), "medical_record_number", True)
                taken.append(m.span(1))
        elif kind == "l:ssn_ctx":
            signals["ssn_label"] += 1
            m = _SSN_LOOSE_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)) and not _SSN_RE.fullmatch(m.group(1)):
                digits = _digits(m.group(1))
                if ssn_valid(digits[:3], digits[3:5], digits[5:]) and digits not in EXAMPLE_SSNS:
                    scan.add("government_id", m.start(1), m.end(1), "ssn", True)
                    taken.append(m.span(1))
        elif kind == "l:routing":
            m = _ROUTING_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                if _BANK_OWNS_RE.search(text, max(0, start - 40), start):
                    taken.append(m.span(1))  # "JPMorgan Chase's routing number ...": the bank's own
                elif _BANK_QUESTION_RE.search(text, max(0, start - 40), start):
                    taken.append(m.span(1))  # "which bank does routing number ... belong to?"
                elif m.group(1) in _EXAMPLE_ROUTING_NUMBERS:
                    signals["routing_invalid"] += 1
                elif aba_routing_valid(m.group(1)):
                    # A routing number names a bank, not a customer: weak alone.
                    scan.add("bank_account", m.start(1), m.end(1), "routing", False)
                    taken.append(m.span(1))
                else:
                    signals["routing_invalid"] += 1
        elif kind == "l:sort_code":
            m = _SORT_CODE_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)) and len(set(_digits(m.group(1)))) > 1:
                scan.add("bank_account", m.start(1), m.end(1), "sort_code", True)
                taken.append(m.span(1))
        elif kind == "l:swift":
            m = _SWIFT_VALUE_RE.match(text, pos)
            if m and not _organisation_before(scan, start):
                scan.add("bank_account", m.start(1), m.end(1), "swift", False)
        elif kind == "l:birth_year":
            m = _BIRTH_YEAR_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                if int(m.group(1)) < 1925:
                    signals["dob_historic"] += 1
                else:
                    scan.add("date_of_birth", m.start(1), m.end(1), "birth_year", False)
        elif kind == "l:cvv":
            m = _CVV_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                scan.add("payment_card", m.start(1), m.end(1), "cvv", True)
                taken.append(m.span(1))
        elif kind == "l:expiry":
            m = _EXPIRY_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                scan.add("payment_card", m.start(1), m.end(), "card_expiry", False)
        elif kind == "l:last4":
            m = _LAST4_VALUE_RE.match(text, pos)
            if m and re.search(
                r"card|account|acct|visa|master|amex|debit|credit|ending", _window(text, start, pos, 30)
            ):
                scan.add("payment_card", m.start(1), m.end(1), "card_last4", False)
        elif kind == "l:credit_score":
            m = _CREDIT_SCORE_VALUE_RE.match(text, pos)
            scale = m and _SCORE_RANGE_AFTER_RE.match(text, m.end(1))
            if scale and (int(m.group(1)) <= 350 or int(scale.group(1)) >= 850):
                m = None  # "ranges from 300 to 850": the scale; "went from 741 to 688" is a score
            if m and _COMPARISON_RE.search(text, pos, m.start(1)):
                m = None  # "credit_score < 600" in a query: a condition, nobody's score
            if m and not _STATISTICS_WORDS.isdisjoint(scan.tokens[max(0, i - 4) : i + 8]):
                m = None  # "the average FICO score in the US is around 715": a statistic
            if m and not _THRESHOLD_WORDS.isdisjoint(scan.tokens[max(0, i - 3) : i]):
                m = None  # "Minimum credit score 620 for standard products": a lender's rule
            if m:
                signals["credit_score_number"] += 1
                scan._pending_topic.append((i, m.start(1), m.end(1), "credit_score_value"))
                if i == 0 and _terse_value(text, pos, m.start(1), m.end(1)):
                    scan._opening_values.append(m.start(1))
        elif kind == "l:health_value":
            m = _HEALTH_VALUE_VALUE_RE.match(text, pos)
            if m and not _overlaps(taken, *m.span(1)):
                signals["health_value_generic"] += 1
                scan._pending_topic.append((i, start, m.end(1), "health_value"))
                if i == 0 and _terse_value(text, pos, m.start(1), m.end(1)):
                    scan._opening_values.append(start)
        elif kind == "l:currency":
            m = _CURRENCY_VALUE_RE.match(text, pos)
            if m:
                signals["money"] += 1
                scan._pending_money.append((start, m.end()))
        elif kind == "l:greeting":
            line_start = text.rfind("\n", 0, start) + 1
            if text[line_start:start].strip() == "":
                m = _NAME_AFTER_RE.match(text, pos)
                if m and _name_ok(m.group(1)):
                    scan._pending_names.append((m.start(1), m.end(1), "name_greeting"))
        elif kind == "l:signoff":
            m = _SIGNOFF_VALUE_RE.match(text, pos)
            if m and _name_ok(m.group(1)):
                scan._pending_names.append((m.start(1), m.end(1), "name_signoff"))


# Words that make a number that fails its checksum a question about the number rather than
# someone's own: "is 4532 ... a valid card?", "generate a fake IBAN".
_CHECKSUM_TRAP_CUES = (
    "valid", "luhn", "checksum", "check digit", "fake", "generat", "made up", "made-up", "random",
    "bogus", "fails", "format", "regex", "prüfziffer", "ungültig", "inválid", "invalide",
)  # fmt: skip
# An IBAN's own label or an account word in the 40 characters before it.
_IBAN_LABEL_RE = re.compile(
    r"iban|account|acct|konto|compte|cuenta|conto|rekening|rachunek|bank|refund|pay|send|transfer"
)


def _disclosed_unchecked(scan: Scan, start: int, end: int) -> bool:
    """Whether a value failing its checksum reads as someone's own rather than as a trap."""
    lowered = scan.lowered
    return not any(cue in lowered for cue in _CHECKSUM_TRAP_CUES) and not _example_nearby(scan.text, start)


def _example_nearby(text: str, position: int) -> bool:
    window = text[max(0, position - 80) : position + 80].lower()
    return any(cue in window for cue in _EXAMPLE_NEARBY_CUES)


_EXAMPLE_NEARBY_CUES = (
    "example",
    "e.g",
    "default",
    "sample",
    "dummy",
    "test",
    "exemple",
    "fictif",
    "fictive",
    "ejemplo",
    "ficticio",
    "beispiel",
    "fiktiv",
    "esempio",
    "fittizio",
    "exemplo",
    "fictício",
    "voorbeeld",
)


_SSN_SHAPE_RE = re.compile(r"\d{3}-\d{2}-\d{4}")


# Words that make an identifier test data: "our test suite uses NHS number ... for the happy path".
_TEST_DATA_RE = re.compile(
    r"test[ -]?(?:suite|data|fixtures?|numbers?|cases?|environment|env|account)|synthetic|happy path|"
    r"sandbox|fixture|dummy|fake|sample|placeholder"
)


def _read_government_id(text: str, scan: Scan, kind: str, pos: int, taken: list[tuple[int, int]]) -> None:
    signals = scan.signals
    m = _GOV_VALUE_RE.match(text, pos)
    if not m and scan.lowered.endswith(("passport", "licence", "license"), 0, pos):
        # "my passport ..., old one is number 561829047": the number later in the sentence.
        m = _GOV_LATER_NUMBER_RE.match(text, pos)
    if not m:
        return
    start, end = m.span(1)
    value = m.group(1)
    digits = _digits(value)
    if _SSN_SHAPE_RE.fullmatch(value):
        return  # "itin is 912-78-4431": the SSN recogniser checks and names it
    if len(digits) < 3 or value.lower() in _COMMON:
        return
    if _overlaps(taken, start, end):
        # An SSN or card already claimed the digits; the label confirms it.
        signals["gov_label_on_number"] += 1
        return
    if (
        _looks_placeholder(value)
        or len(set(digits)) == 1
        or _MASKED_RE.fullmatch(value)
        or _TEST_DATA_RE.search(scan.lowered, max(0, pos - 80), end + 60)
    ):
        signals["gov_id_placeholder"] += 1
        taken.append((start, end))  # no other recogniser reads it as a phone or a card
        return
    # A labelled number that fails its check digit is still a disclosure attempt
    # (people mistype), so it stays as weak evidence rather than a trap.
    checks = {
        "l:gov_nhs": lambda: nhs_number_valid(digits),
        "l:gov_aadhaar": lambda: len(digits) == 12 and verhoeff_valid(digits),
        "l:gov_sin": lambda: len(digits) == 9 and luhn_valid(digits),
    }
    if kind in checks and not checks[kind]():
        signals["gov_id_invalid"] += 1
        taken.append((start, end))
        scan.add("government_id", start, end, "gov_id_unverified", False)
        return
    taken.append((start, end))
    scan.add("government_id", start, end, "gov_id", True)


# Words that make a capitalised phrase an organisation's part or programme.
_INSTITUTION_WORDS = frozenset(
    {"team", "teams", "programme", "program", "assistance", "department", "dept", "services",
     "committee", "board", "desk", "fund", "foundation", "scheme", "council", "agency", "helpline",
     "hotline", "portal", "initiative", "taskforce", "squad", "division", "office", "centre", "center",
     "officer", "coordinator", "director", "liaison", "relations", "advocate", "success", "experience",
     "support"}
)  # fmt: skip
# "Owner: Identity team": the word after a name field's value names a team.
_TEAM_AFTER_RE = re.compile(
    r"[ \t]+(?:team|squad|department|dept|group|division|office|desk)\b", re.IGNORECASE
)
# "2.0" after a number: a version.
_VERSION_TAIL_RE = re.compile(r"[.,-]\d")


# Words that make a common PIN a question about PINs in general.
_PIN_STATISTIC_WORDS = frozenset(
    {"commonly", "common", "guessed", "guess", "popular", "quiz", "statistics", "worst", "avoid", "list"}
)
# The PINs people are warned about, by name.
_COMMON_PINS = frozenset({"0000", "1111", "1234", "12345", "123456", "1212", "4321", "2580", "9999", "6969"})
# Words before a figure's label that make the figure a rule's bound ("minimum credit score 620").
_THRESHOLD_WORDS = frozenset(
    {"minimum", "min", "maximum", "max", "required", "threshold", "cutoff", "qualifying"}
)


def _name_ok(candidate: str, lower_ok: bool = False) -> bool:
    words = candidate.split()
    if words and len(words[0]) == 2 and words[0].endswith("."):
        words = words[1:]  # "R. Alvarez": judge the surname
    if not words:
        return False
    first = words[0].lower().strip(".,").replace("’", "'")
    if first in _NAME_STOP or first in _RELATIONS or first in _FIRST_PERSON or len(first) < 2:
        return False
    if words[-1].lower().strip(".,").removesuffix("'s").removesuffix("’s") in _COMPANY_SUFFIXES:
        return False  # "Acme Corp's billing department": a company
    if not _INSTITUTION_WORDS.isdisjoint(word.lower().strip(".,") for word in words):
        return False  # "Employee Assistance Programme", "Identity Team": a body, not a person
    if candidate[:1].islower():
        # lower case: a known first name that is no common word ("may", "will", "grace")
        return lower_ok and first in _FIRST_NAMES and first not in _COMMON
    return True


def _read_name(text: str, scan: Scan, i: int, pos: int, kind: str, allow_lower: bool) -> None:
    m = _NAME_AFTER_RE.match(text, pos)
    if m and _name_ok(m.group(1)) and not _TEAM_AFTER_RE.match(text, m.end(1)):
        scan._pending_names.append((m.start(1), m.end(1), kind))
        return
    if allow_lower:
        m = _NAME_AFTER_LOWER_RE.match(text, pos)
        if m and _name_ok(m.group(1), lower_ok=True):
            words = m.group(1).split()
            end = m.end(1)
            if len(words) == 2 and words[1].lower() in _COMMON:
                end = m.start(1) + len(words[0])  # "i'm john and ...": the name is one word
            scan._pending_names.append((m.start(1), end, kind))


_NAME_AGE_RE = re.compile(
    r"(?<![\w'’-])([A-ZÀ-Ý][a-zà-ÿ'’]+(?:[ -][A-ZÀ-Ý][a-zà-ÿ'’]+){1,3}),[ \t]*(\d{1,3}),[ \t]*(?=[A-Za-zÀ-ÿ])"
)


def _scan_names(text: str, scan: Scan, hits: list[tuple[int, int, str]]) -> None:
    signals = scan.signals
    tokens = scan.tokens
    found = scan._pending_names
    public_spans = scan.kind_spans.get("public_figure", [])
    signals["public_figure"] = len(public_spans)
    # "my wife Anna", "her boss, Tom Reed"
    for i in scan.kind_positions.get("rel", ()):
        if i and tokens[i - 1] in _POSSESSIVES:
            m = _RELATION_VALUE_RE.match(text, scan.token_end(i))
            if m and _name_ok(m.group(1)):
                found.append((m.start(1), m.end(1), "name_relation"))
    # A known first name followed by a capitalised word that is not prose.
    first_names = scan.kind_positions.get("first_name", ())
    if first_names:
        starts = scan.token_starts
        for i in first_names:
            if i + 1 >= len(tokens):
                continue
            s0 = starts[i]
            if not text[s0 : s0 + 1].isupper():
                continue
            s1 = starts[i + 1]
            nxt = text[s1 : s1 + len(tokens[i + 1])]
            if (
                nxt[:1].isupper()
                and tokens[i + 1] not in _NAME_STOP
                and tokens[i + 1] not in _STREET_SUFFIXES  # "Great Russell Street"
                and len(nxt) > 1
                and s1 - (s0 + len(tokens[i])) == 1
            ):
                found.append((s0, s1 + len(nxt), "name_pair"))
    # "Leonor Vasquez-Trujillo, 41, charge nurse at ...": a full name with an age, as a
    # reference, a case note or a profile gives it; the first name need not be a known one.
    # Only an age between commas can end one, so the regex runs just before such numbers.
    for i in scan.numeric_tokens:
        start = scan.token_starts[i]
        end = start + len(tokens[i])
        if end - start > 3 or text[start - 2 : start].strip() != "," or text[end : end + 1] != ",":
            continue
        for m in _NAME_AGE_RE.finditer(text, max(0, start - 80), end + 8):
            words = m.group(1).replace("-", " ").lower().split()
            if m.start(2) == start and 1 <= int(m.group(2)) <= 110 and _NAME_STOP.isdisjoint(words):
                found.append((m.start(1), m.end(1), "name_pair"))
                signals["age"] += 1
    if not _AFFILIATION_WORDS.isdisjoint(tokens):
        _scan_name_affiliations(text, scan, found)
    seen: list[tuple[int, int]] = []
    for start, end, kind in found:
        if _overlaps(public_spans, start, end) or _overlaps(seen, start, end):
            continue
        seen.append((start, end))
        scan.add("person_name", start, end, kind, False)
        if len(text[start:end].split()) >= 2:
            signals["full_name"] += 1


# "Owen Pratchett, member #88123 at Iron Forge Gym", "Jaylen Okafor, 10th grade, homeroom
# 214", "Derek Shawcross from number 14, teaches PE at ...": a full name tied to a workplace,
# a school or a club identifies that person even with no contact detail.
_AFFILIATION_WORDS = frozenset(
    {"works", "worked", "working", "teaches", "teaching", "taught", "member", "employee", "staff",
     "intern", "grade", "homeroom", "classroom", "ward", "branch", "nurse", "teacher", "assistant",
     "manager", "supervisor", "student", "pupil", "patient", "tenant", "resident", "school", "gym",
     "club", "group", "department", "dept", "shift", "école", "escola", "schule", "scuola",
     "colegio", "lycée", "collège", "classe", "klasse", "institutrice", "instituteur", "professeur",
     "maestra", "maestro", "profesora", "profesor", "professora", "lehrer", "lehrerin", "bewerber",
     "bewerberin", "mitarbeiter", "mitarbeiterin", "empleado", "empleada", "funcionário",
     "funcionária", "employé", "employée", "stagiaire", "élève", "alumno", "alumna", "aluno", "aluna",
     "schüler", "schülerin", "filiale", "sucursal", "agência", "dispatcher", "cohort", "classmate",
     "alum", "alumni", "hired", "colleague", "coworker", "co-worker"}
)  # fmt: skip
_CAPITALISED_PAIR_RE = re.compile(
    r"(?<![\w'’-])([A-ZÀ-Ý][a-zà-ÿ'’]+(?:-[A-ZÀ-Ý][a-zà-ÿ'’]+)?)"
    r"[ \t]+([A-ZÀ-Ý][a-zà-ÿ'’]+(?:-[A-ZÀ-Ý][a-zà-ÿ'’]+)?)"
    r"(?=[ \t]*(?:,|\(|[ \t](?:from|at|on|in|who|is|was|en|de|du|da|von|aus)\b|[?.!][ \t]+(?:she|he|they)\b))"
)
_AFFILIATION_REACH = 70
_PLAIN_WORD_RE = re.compile(r"\w+")


def _scan_name_affiliations(text: str, scan: Scan, found: list[tuple[int, int, str]]) -> None:
    # A name is looked for only in the stretch before each affiliation word: the pattern has no
    # literal to skip ahead to, so running it over a whole long prompt costs more than this.
    windows: list[tuple[int, int]] = []
    for i in compress(count(), map(_AFFILIATION_WORDS.__contains__, scan.tokens)):
        at = scan.token_starts[i]
        begin = max(0, at - _AFFILIATION_REACH - 60)
        if windows and begin <= windows[-1][1]:
            windows[-1] = (windows[-1][0], at)
        else:
            windows.append((begin, at))
    for begin, end in windows:
        _name_affiliations_in(text, begin, end, found)


_CITY_STATE_AFTER_RE = re.compile(r",?[ \t]+[A-Z]{2}[ \t]+\d{5}\b")


def _name_affiliations_in(text: str, begin: int, end: int, found: list[tuple[int, int, str]]) -> None:
    for m in _CAPITALISED_PAIR_RE.finditer(text, begin, end):
        first, last = m.group(1).lower(), m.group(2).lower()
        if first in _NAME_STOP or last in _NAME_STOP or last in _STREET_SUFFIXES or first in _MONTH_TOKENS:
            continue
        if _CITY_STATE_AFTER_RE.match(text, m.end()):
            continue  # "500 Howard Street, San Francisco, CA 94105": a city
        after = text[m.end() : m.end() + _AFFILIATION_REACH]
        # "Bethany Crowe? she worked under me at ...": the next sentence is about her
        skip = 1 if after[:1] in ".!?" else 0
        cut = min((at for at in (after.find(c, skip) for c in ".!?\n") if at >= 0), default=len(after))
        words = _PLAIN_WORD_RE.findall(after[:cut].lower())  # "l'école" -> "l", "école"
        if not _AFFILIATION_WORDS.isdisjoint(words):
            found.append((m.start(), m.end(), "name_affiliation"))


def _near(positions: list[int], index: int, window: int) -> bool:
    k = bisect_left(positions, index - window)
    return k < len(positions) and positions[k] <= index + window


_HEALTH_DISCLOSURE_VERBS = frozenset(
    {"have", "has", "had", "having", "got", "gotten", "get", "suffer", "suffers", "suffering",
     "diagnosed", "with", "am", "i'm", "im", "is", "was", "been", "on", "from", "taking",
     "take", "took", "caught", "developed", "battling", "fighting", "survived", "started"}
)  # fmt: skip
_FINANCE_DISCLOSURE_VERBS = frozenset(
    {"owe", "owes", "owed", "owing", "behind", "late", "my", "our", "pay", "paying", "paid",
     "using", "got", "earn", "earns", "make", "makes", "lost", "took", "have", "has", "had",
     "defaulted", "missed", "maxed", "into", "in", "on"}
)  # fmt: skip
_REQUEST_VERBS = frozenset(
    {"give", "tell", "show", "help", "explain", "let", "teach", "remind", "send", "write",
     "find", "get", "make", "draft", "suggest", "recommend", "walk", "guide", "email", "text"}
)  # fmt: skip
_NUMERAL_BEFORE_I = frozenset(
    {"bipolar", "type", "stage", "grade", "class", "phase", "part", "chapter", "level", "war",
     "louis", "henry", "elizabeth", "charles", "george", "edward", "james", "william", "mary"}
)  # fmt: skip
_QUESTION_AUXILIARIES = frozenset({"do", "can", "should", "could", "would", "will", "shall", "might", "may"})
_IMPLIED_SELF = frozenset(
    {"diagnosed", "started", "taking", "prescribed", "been", "got", "having", "suffering",
     "pregnant", "earning", "making", "owe", "owing", "behind", "recovering", "admitted",
     "discharged", "tested", "struggling", "dealing", "living", "currently", "just",
     "paycheck", "paycheque", "salary", "rent", "savings", "income", "wages", "payslip",
     "had", "spent", "declared", "overdrawn", "lost", "finished", "missed", "maxed", "defaulted",
     "relapsed", "woke", "feeling", "felt", "post-op", "postop", "starting", "stopped", "quit",
     "switched", "upped", "went", "broke", "owed", "borrowed", "waiting", "scheduled", "booked"}
)  # fmt: skip
# Relation words that open a sentence about people in general ("Parents should contact the
# office", "Doctor's notes are required") rather than about someone's own relative.
_GENERIC_OPENERS = frozenset(
    {"parents", "kids", "children", "hijos", "doctor", "nurse", "teacher", "manager", "boss",
     "landlord", "customer", "client", "employer", "caregiver"}
)  # fmt: skip
_IMPLIED_OPENERS = (_IMPLIED_SELF | _RELATIONS) - _GENERIC_OPENERS
# Verbs that speak for the writer at the start of a clause after a comma as well.
_CLAUSE_OPENERS = frozenset({"had", "got", "diagnosed", "started", "taking", "having", "been"})
_COMMA_BEFORE_RE = re.compile(r",[ \t]*$")
_FIGURE_AFTER_RE = re.compile(r":\s*(?:about\s+|around\s+|~)?[$£€₹]?\s?\d")
_PROCESS_AFTER_MONEY_WORD = frozenset(
    {"review", "reviews", "negotiation", "negotiations", "range", "ranges", "band", "bands",
     "benchmark", "benchmarks", "survey", "surveys", "data", "transparency", "expectations",
     "structure", "structures", "calculator", "calculators", "advice", "tips", "question",
     "questions", "talk", "talks", "discussion", "discussions", "season", "cycle", "cycles", "policy",
     # a job advert's "Salary: competitive", "Salary: DOE"
     "competitive", "negotiable", "doe", "tbd", "tba", "commensurate"}
)  # fmt: skip
# "the oncologist said ...", "MRI showed ...", "biopsy came back ...": a clinician or a test
# reporting on someone is a patient's record, even with no "I" or "my" in the sentence.
_CLINICAL_REPORT_VERBS = frozenset(
    {"said", "says", "confirmed", "confirms", "found", "finds", "showed", "shows", "came",
     "come", "wants", "wanted", "thinks", "thought", "told", "diagnosed", "ordered", "prescribed",
     "referred", "upped", "increased", "lowered", "doubled", "recommended", "suspects",
     "mentioned", "revealed", "detected", "put", "started", "removed", "scheduled", "booked",
     "cleared", "flagged", "indicated", "back"}
)  # fmt: skip
_LOCATION_VERBS = frozenset(
    {"live", "living", "lives", "reside", "residing", "staying", "stay", "located", "based",
     "moved", "parked", "sleeping", "hiding", "stuck", "waiting"}
)  # fmt: skip
_LOCATION_ADVERBS = frozenset({"right", "just", "directly", "literally", "very", "now", "currently"})
_LOCATION_PREPS = frozenset(
    {"at", "on", "near", "next", "by", "across", "off", "behind", "opposite", "above",
     "around", "outside", "inside", "beside"}
)  # fmt: skip


def _scan_topics(
    text: str, scan: Scan, hits: list[tuple[int, int, str]], money: list[tuple[int, int]]
) -> None:
    """Health, money and location facts: a topic term tied to a person nearby."""
    signals = scan.signals
    tokens = scan.tokens
    # "give me a meal plan", "how do I help": the writer asks, they disclose nothing.
    first_person = [
        i
        for i in scan.kind_positions.get("fp", ())
        if not (
            i
            and (
                (tokens[i] == "me" and tokens[i - 1] in _REQUEST_VERBS)
                or (tokens[i] == "i" and tokens[i - 1] in _QUESTION_AUXILIARIES)
                # the numeral, not the writer: "bipolar I", "type I diabetes", "stage I"
                or (tokens[i] == "i" and tokens[i - 1] in _NUMERAL_BEFORE_I)
                # the country: "in the US"
                or (tokens[i] == "us" and tokens[i - 1] == "the")
            )
        )
    ]
    relation = [
        i
        for i in scan.kind_positions.get("rel", ())
        if i and (tokens[i - 1] in _POSSESSIVES or (i > 1 and tokens[i - 2] in _POSSESSIVES))
    ]
    if "rel_possessive" in scan.kind_positions:
        relation = sorted(relation + scan.kind_positions["rel_possessive"])
    signals["first_person"] = len(first_person)
    signals["relation"] = len(relation)
    name_tokens: list[int] = []
    if any(e.category == "person_name" for e in scan.evidence):
        starts = scan.token_starts
        name_tokens = [bisect_left(starts, e.start) for e in scan.evidence if e.category == "person_name"]
    boundaries = [m.end() for m in _SENTENCE_END_RE.finditer(text)]
    # "Diagnosed with ADHD at 34", "Started on Vyvanse", "Owe 3k on my card":
    # a sentence opening on such a verb speaks about the writer.
    implied: list[int] = []
    starts = scan.token_starts
    # A token opens a sentence once for the start of the text (token 0) and once for
    # every sentence end between the token before it and itself.
    for i in compress(count(), map(_IMPLIED_OPENERS.__contains__, tokens)):
        if i + 1 < len(tokens) and tokens[i + 1] in _PROCESS_AFTER_MONEY_WORD and tokens[i] in _IMPLIED_SELF:
            continue  # "Salary review is next week": a process, no one's figure
        if (
            tokens[i] in _IMPLIED_SELF
            and text.startswith(":", scan.token_end(i))
            and not _FIGURE_AFTER_RE.match(text, scan.token_end(i))
        ):
            continue  # "- Income: permanent employees need 2 payslips": a field's label, not a figure
        opened = bisect_right(boundaries, starts[i])
        if i:
            opened -= bisect_right(boundaries, starts[i - 1])
        else:
            opened += 1
        if (
            not opened
            and tokens[i] in _CLAUSE_OPENERS
            and _COMMA_BEFORE_RE.search(text, max(0, starts[i] - 4), starts[i])
        ):
            opened = 1  # "sorry for vanishing, had a really bad depressive episode": a clause of the writer's
        if opened:
            implied.extend([i] * opened)
    signals["implied_self"] = len(implied)
    reported = [
        i
        for i, size, kind in hits
        if kind == "clinical_term"
        and not _CLINICAL_REPORT_VERBS.isdisjoint(tokens[i + size : i + size + 3])
        and not signals.get("generic_opener")
    ]
    signals["clinical_report"] = len(reported)
    anchors = sorted(first_person + relation + name_tokens + implied + reported)
    # A fact is tied to a person only within one sentence: "I'm on my phone.
    # A 30-year mortgage of $300,000 ..." discloses nothing about the writer.

    def anchored(index: int) -> bool:
        if not anchors:
            return False
        starts = scan.token_starts
        sentence = bisect_right(boundaries, starts[index]) if boundaries else 0
        k = bisect_left(anchors, index - _ANCHOR_WINDOW_TOKENS)
        while k < len(anchors) and anchors[k] <= index + _ANCHOR_WINDOW_TOKENS:
            if not boundaries or bisect_right(boundaries, starts[anchors[k]]) == sentence:
                return True
            k += 1
        return False

    stated: list[tuple[int, int]] = []
    for i, size, kind in hits:
        if kind in ("health_term", "clinical_term", "finance_term"):
            signals[kind] += 1
            if anchored(i) or (kind == "health_term" and _condition_since(text, scan, i, size, boundaries)):
                category = "financial" if kind == "finance_term" else "health"
                scan.add(category, scan.token_starts[i], scan.token_end(i + size - 1),
                         kind + "_anchored", False)  # fmt: skip
                # "I've had a UTI", "we're late on the mortgage": a verb of having
                # or owing right before the term makes it a statement, not a topic.
                before = tokens[max(0, i - 4) : i]
                verbs = _FINANCE_DISCLOSURE_VERBS if category == "financial" else _HEALTH_DISCLOSURE_VERBS
                if kind != "clinical_term" and not verbs.isdisjoint(before):
                    signals[category + "_disclosure"] += 1
                term_start, term_end = scan.token_starts[i], scan.token_end(i + size - 1)
                if (
                    kind == "health_term"
                    and not _overlaps(stated, term_start, term_end)
                    and _states_own_condition(tokens, i, by_pronoun=not scan.kind_spans.get("public_figure"))
                ):
                    # "I have diabetes", "I was diagnosed with ADHD", "I'm on sertraline": the
                    # writer states it outright, which is as plain as a validated number.
                    scan.add("health", term_start, term_end, "health_self_statement", True)
                    stated.append((term_start, term_end))
        elif kind == "example_cue":
            if (
                tokens[i] in ("test", "testing")
                and size == 1
                and (
                    (i and tokens[i - 1] in _MEDICAL_TEST_WORDS)
                    or tokens[i + 1 : i + 2] == ["results"]
                    or not _TEST_OUTCOMES.isdisjoint(tokens[i + 1 : i + 4])
                )
            ):
                continue  # "my blood test came back", "covid test results": a medical test
            signals["example_cue"] += 1
        elif kind == "public_cue":
            signals["public_context"] += 1
        elif kind == "location_cue":
            scan.add("location", scan.token_starts[i], scan.token_end(i + size - 1),
                     "location_cue", False)  # fmt: skip
        elif kind == "years_old":
            signals["age"] += 1
    done: set[tuple[int, int, str]] = set()
    opening = scan._opening_values
    for i, start, end, kind in scan._pending_topic:
        if (start, end, kind) not in done and (anchored(i) or start in opening):
            done.add((start, end, kind))
            category = "financial" if kind == "credit_score_value" else "health"
            scan.add(category, start, end, kind, kind != "med_context")
    # "we live next to ...", "my kids are staying at ..."
    n = len(tokens)
    for i in scan.kind_positions.get("locverb", ()):
        j = i + 1
        if j < n and tokens[j] in _LOCATION_ADVERBS:
            j += 1
        if j < n and tokens[j] in _LOCATION_PREPS and (_near(first_person, i, 3) or _near(relation, i, 3)):
            scan.add("location", scan.token_starts[i], scan.token_end(j), "location_cue", False)
    if money or scan._pending_money:
        starts = scan.token_starts
        added: list[tuple[int, int]] = []
        # "rent 1450, car payment 389, income 4100 after tax": several labelled figures
        # listed together are someone's own budget, not a question about money.
        listed = len(scan._pending_money) >= 2 and not signals.get("generic_opener")
        for start, end in money + scan._pending_money:
            if _overlaps(added, start, end):
                continue
            labelled = (start, end) in scan._pending_money
            at = bisect_left(starts, start)
            if anchored(at) or (labelled and (listed or start in opening)) or _pay_statement(tokens, at):
                added.append((start, end))
                scan.add("financial", start, end, "money_anchored", False)
    if scan.numeric_tokens and ("mg" in text or "ml" in text or "units" in text or "mcg" in text
                                or "iu" in scan.lowered):  # fmt: skip
        starts = scan.token_starts
        for m in _anchored(_DOSAGE_RE, text, scan.number_starts):
            signals["dosage"] += 1
            if anchored(bisect_left(starts, m.start())):
                scan.add("health", m.start(), m.end(), "dosage_anchored", False)
    if scan.numeric_tokens:
        _scan_regimens(text, scan)
        if not _WEEK_WORDS.isdisjoint(tokens):
            _scan_pregnancy_weeks(text, scan, boundaries)
    if not _CYCLE_WORDS.isdisjoint(tokens):
        _scan_treatment_cycles(scan)


# "she's on 96k base", "he makes about $140,000", "Juno earns 85k": someone's pay, said of
# them by a pronoun or a name, with no "I" or "my" in the sentence to anchor it.
_PAY_SUBJECTS = frozenset({"i'm", "im", "she's", "he's", "they're", "we're", "i", "she", "he", "we", "they"})
_PAY_VERBS = frozenset(
    {"earns", "earn", "earning", "makes", "make", "making", "paid", "gets", "grosses", "clears", "nets"}
)
_PAY_FILLERS = frozenset(
    {"about", "around", "roughly", "like", "just", "only", "nearly", "almost", "over", "under"}
)


def _pay_statement(tokens: list[str], i: int) -> bool:
    j = i
    while j > 0 and i - j < 2 and tokens[j - 1] in _PAY_FILLERS:
        j -= 1
    if j < 2:
        return False
    verb, subject = tokens[j - 1], tokens[j - 2]
    if verb == "on":
        return subject in _PAY_SUBJECTS or (
            j >= 3 and subject in ("is", "am") and tokens[j - 3] in _PAY_SUBJECTS
        )
    return verb in _PAY_VERBS and (subject in _PAY_SUBJECTS or subject in _FIRST_NAMES)


# The writer stating a condition or a medicine of their own, right before its term.
_SELF_STATEMENTS = (
    ("i", "have"), ("i", "have", "got"), ("i've", "got"), ("i", "had"), ("i've", "had"),
    ("i", "suffer", "from"), ("i", "was", "diagnosed", "with"), ("i", "got", "diagnosed", "with"),
    ("i've", "been", "diagnosed", "with"), ("i", "have", "been", "diagnosed", "with"),
    ("i'm", "diagnosed", "with"), ("i", "was", "just", "diagnosed", "with"), ("i'm",), ("i", "am"),
    ("i'm", "on"), ("i", "am", "on"), ("i'm", "taking"), ("i", "take"), ("i", "started"),
    ("i've", "been", "on"), ("i", "live", "with"), ("i'm", "living", "with"),
    ("i", "was", "inpatient", "for"), ("i", "was", "hospitalized", "for"),
    ("i", "was", "hospitalised", "for"),
    ("i", "was", "treated", "for"), ("i'm", "being", "treated", "for"), ("i", "was", "admitted", "for"),
    ("i", "had", "surgery", "for"), ("i'm", "recovering", "from"), ("i", "am", "recovering", "from"),
    ("je", "prends"), ("j'ai",), ("je", "suis"), ("tengo",), ("tomo",), ("padezco",), ("sufro", "de"),
    ("ich", "habe"), ("ich", "nehme"), ("tenho",), ("estou", "com"), ("m'a", "diagnostiqué"),
)  # fmt: skip
_SELF_STATEMENT_SET = frozenset(_SELF_STATEMENTS)
# The same about a relative: "my wife has epilepsy", "my son is autistic", "my dad was
# diagnosed with ...".
_RELATIVE_STATEMENT_SET = frozenset(
    {("has",), ("had",), ("is",), ("is", "on"), ("is", "taking"), ("suffers", "from"),
     ("was", "diagnosed", "with"), ("has", "been", "diagnosed", "with"), ("got", "diagnosed", "with"),
     ("just", "got", "diagnosed", "with"), ("was", "just", "diagnosed", "with"), ("lives", "with"),
     # "mi pareja toma ...", "mon père est sous dialyse", "meine Mutter hat ..."
     ("tiene",), ("toma",), ("padece",), ("sufre", "de"), ("tem",), ("está", "com"), ("est", "sous"),
     ("hat",), ("nimmt",), ("ha",), ("prende",)}
)  # fmt: skip
# The same about someone the writer knows, by pronoun: "she's HIV positive", "he was
# diagnosed with MS". Counted only where a person anchor shares the sentence and no public
# figure is named in the text.
_PRONOUN_STATEMENT_SET = frozenset(
    {(pronoun, *verb) for pronoun in ("she", "he") for verb in _RELATIVE_STATEMENT_SET}
    | {("she's",), ("he's",), ("she's", "on"), ("he's", "on"), ("she's", "taking"), ("he's", "taking"),
       ("she's", "been", "diagnosed", "with"), ("he's", "been", "diagnosed", "with"),
       ("she's", "got"), ("he's", "got")}
)  # fmt: skip
# Words between the verb and the term that keep it a statement: "I have type 2 diabetes".
_CONDITION_MODIFIERS = frozenset(
    {"a", "an", "mild", "severe", "chronic", "early", "late", "type", "1", "2", "stage", "i", "ii",
     "iii", "iv", "acute", "bad", "really", "pretty", "moderate", "diagnosed", "some", "been",
     "une", "un", "una", "uma", "eine", "einen", "ein", "de"}
)  # fmt: skip
# "Do I have diabetes?", "if I have covid": asked or supposed, not stated.
_NOT_STATED_BEFORE = frozenset(
    {"do", "does", "did", "can", "could", "would", "should", "might", "may", "will", "if", "whether",
     "unless", "what", "how", "when", "why", "not", "don't", "doubt", "worried", "afraid"}
)  # fmt: skip


def _states_own_condition(tokens: list[str], i: int, by_pronoun: bool = False) -> bool:
    """Return True when a verb of having opens the condition at token ``i`` for the writer,
    a relative ("my wife has"), or with ``by_pronoun``, "she"/"he"."""
    j = i
    while j > 0 and i - j < 3 and tokens[j - 1] in _CONDITION_MODIFIERS:
        j -= 1
    for size in (1, 2, 3, 4, 5):
        start = j - size
        if start < 0:
            break
        verb = tuple(tokens[start:j])
        if verb in _SELF_STATEMENT_SET:
            return start == 0 or tokens[start - 1] not in _NOT_STATED_BEFORE
        if (
            verb in _RELATIVE_STATEMENT_SET
            and start >= 2
            and tokens[start - 1] in _RELATIONS
            and tokens[start - 2] in _POSSESSIVES
            and (start == 2 or tokens[start - 3] not in _NOT_STATED_BEFORE)
        ):
            return True
        if by_pronoun and verb in _PRONOUN_STATEMENT_SET:
            return start == 0 or tokens[start - 1] not in _NOT_STATED_BEFORE
    return False


# "hiv+ since 2019", "asthmatic for 20 years": a sentence that opens on a condition and
# says how long it has lasted is the writer's own history.
_SINCE_RE = re.compile(
    r"\+?\s*(?:positive\s+|type\s+[12]\s+)?(?:since\s+(?:\d|birth|childhood|i\b|a\s+kid|my\b)"
    r"|for\s+(?:\d+|a|two|three|four|five|six|ten|many|several)\s+(?:years?|months?|weeks?))",
    re.IGNORECASE,
)


# "I'm 11 weeks and haven't told work", "34 weeks and measuring small, OB wants scans": how
# far along a pregnancy is, said by the writer or opening a sentence among pregnancy words.
_NOT_PREGNANCY_AFTER_WEEKS = frozenset(
    {"into", "away", "from", "late", "behind", "in", "out", "of", "until", "before", "after",
     "left", "off", "since", "ago", "older", "old", "notice", "to", "till", "at", "for", "per",
     "a", "now", "later", "early", "straight", "running", "sober", "clean", "vacation", "holiday"}
)  # fmt: skip
_WEEK_WORDS = frozenset({"weeks", "wks", "wk"})
_PREGNANCY_CONTEXT = frozenset(
    {"along", "ob", "obgyn", "ob-gyn", "midwife", "baby", "baby's", "scan", "scans", "bump", "trimester",
     "breech", "pregnant", "pregnancy", "due", "nausea", "kicks", "kicking", "measuring",
     "ultrasound", "maternity", "contractions", "heartbeat", "fetal", "foetal", "gestational"}
)  # fmt: skip


def _scan_pregnancy_weeks(text: str, scan: Scan, boundaries: list[int]) -> None:
    tokens = scan.tokens
    starts = scan.token_starts
    n = len(tokens)
    context = not _PREGNANCY_CONTEXT.isdisjoint(tokens)
    for i in scan.numeric_tokens:
        if (
            i + 1 >= n
            or tokens[i + 1] not in _WEEK_WORDS
            or not tokens[i].isdigit()
            or not 4 <= int(tokens[i]) <= 42
        ):
            continue
        if i + 2 < n and tokens[i + 2] in _NOT_PREGNANCY_AFTER_WEEKS:
            continue
        said = i > 0 and tokens[i - 1] in ("i'm", "im", "am", "we're")
        if said or (context and _opens_sentence(scan, i, boundaries)):
            scan.add("health", starts[i], scan.token_end(i + 1), "health_self_statement", True)


def _opens_sentence(scan: Scan, i: int, boundaries: list[int]) -> bool:
    """Return True when token ``i`` is the first of the text or of a sentence."""
    starts = scan.token_starts
    return i == 0 or bisect_right(boundaries, starts[i]) > bisect_right(boundaries, starts[i - 1])


def _condition_since(text: str, scan: Scan, i: int, size: int, boundaries: list[int]) -> bool:
    return _opens_sentence(scan, i, boundaries) and bool(_SINCE_RE.match(text, scan.token_end(i + size - 1)))


# "20 units of Lantus", "2 puffs of Symbicort", "50mg sertraline": an amount, a unit and
# a drug-like word: someone's regimen, whoever takes it.
_REGIMEN_RE = re.compile(
    r"\d{1,4}(?:[.,]\d{1,2})?\s?(?:mg|mcg|µg|ug|ml|iu|units?|u|milligrams?|micrograms?|puffs?|"
    r"tablets?|tabs?|pills?|capsules?|caps|drops|sachets?|patch(?:es)?|injections?|shots?|jabs?)\b"
    r"\s+(?:of\s+)?(?:(?:my|his|her|their|the|your)\s+)?([A-Za-z][A-Za-z-]{3,30})",
    re.IGNORECASE,
)
_DRUG_SUFFIXES = (
    "in", "ol", "ide", "pam", "lam", "mab", "nib", "pril", "sartan", "statin", "formin",
    "xetine", "triptan", "azole", "cillin", "mycin", "cycline", "floxacin", "one", "ine",
    "ate", "zepam", "tide", "glutide", "gliptin", "flozin", "afil", "olol", "dipine", "pine",
)  # fmt: skip
_NOT_DRUGS = frozenset(
    {"water", "coffee", "tea", "milk", "juice", "protein", "sugar", "caffeine", "alcohol",
     "each", "every", "daily", "twice", "once", "per", "a", "an", "in", "at", "for", "with",
     "and", "or", "before", "after", "medicine", "medication", "dose", "this", "that", "solution",
     "saline", "routine", "online", "machine", "engine", "line", "time", "wine", "gasoline",
     "vaccine", "vitamin", "nicotine", "morning", "evening", "bedtime", "night"}
)  # fmt: skip


def _drug_like(word: str, capitalised: bool) -> bool:
    low = word.lower()
    if low in _NOT_DRUGS or low in _COMMON:
        return False
    kinds = _PHRASES.get(low)
    if kinds and "health_term" in kinds:
        return True
    return capitalised or low.endswith(_DRUG_SUFFIXES)


_REGIMEN_UNITS = frozenset(
    {"mg", "mcg", "µg", "ug", "ml", "iu", "unit", "units", "u", "milligram", "milligrams",
     "microgram", "micrograms", "puff", "puffs", "tablet", "tablets", "tab", "tabs", "pill",
     "pills", "capsule", "capsules", "caps", "drops", "sachet", "sachets", "patch", "patches",
     "injection", "injections", "shot", "shots", "jab", "jabs"}
)  # fmt: skip
_DIGITS_AND_SEPARATORS = "0123456789.,"


def _scan_regimens(text: str, scan: Scan) -> None:
    """Doses of a drug: "20 units of Lantus", "escitalopram 10 mg", and lab results."""
    tokens = scan.tokens
    n = len(tokens)
    starts: list[int] = []
    drug_first: list[tuple[int, int]] = []
    for i in scan.numeric_tokens:
        attached = tokens[i].lstrip(_DIGITS_AND_SEPARATORS)  # "50mg"
        unit = attached or (tokens[i + 1] if i + 1 < n else "")
        # Only numbers with a unit right after them ("20 units", "50mg") can start a regimen.
        if unit in _REGIMEN_UNITS:
            if i and tokens[i - 1].isdigit() and text[scan.token_end(i - 1)] in ".,":
                starts.append(scan.token_starts[i - 1])  # "1.5 mg": the number starts earlier
            starts.append(scan.token_starts[i])
        # The drug before its dose: "escitalopram 10 mg", "Sertraline 50mg daily".
        if i and unit in ("mg", "mcg", "µg", "ug", "ml", "iu") and len(tokens[i - 1]) >= 5:
            start = scan.token_starts[i - 1]
            word = text[start : scan.token_end(i - 1)]
            if word.isalpha() and _drug_like(word, False):
                drug_first.append((start, scan.token_end(i) if attached else scan.token_end(i + 1)))
    for m in _anchored(_REGIMEN_RE, text, starts):
        word = m.group(1)
        if _drug_like(word, word[:1].isupper()):
            scan.add("health", m.start(), m.end(1), "dosage_regimen", False)
    for start, end in drug_first:
        scan.add("health", start, end, "dosage_regimen", False)
    _scan_lab_panel(text, scan)


# A lab report: two or more results with their units ("TSH 6.8 mIU/L (H) Free T4 0.7 ng/dL").
# A reference range ("70-99 mg/dL", "below 5.7 mmol/L") is textbook knowledge, not a result.
_LAB_VALUE_RE = re.compile(
    r"(?<![\d.\-–<>])(\d{1,4}(?:[.,]\d{1,3})?)\s?(?:mg/dl|mmol/l|m?iu/l|[µu]iu/ml|ng/dl|ng/ml|pg/ml|"
    r"iu/ml|u/l|g/dl|g/l|[µu]mol/l|meq/l|mmhg|x10\^?9/l|cells/mm3|copies/ml)\b",
    re.IGNORECASE,
)
_LAB_RANGE_BEFORE_RE = re.compile(
    r"(?:\d\s?[-–]|\bto|\bbelow|\babove|\bunder|\bover|\bless than|\bmore than|\bbetween|\band|"
    r"\bnormal(?: range)?(?: is)?|\btarget(?: is)?|\bshould be)\s*$",
    re.IGNORECASE,
)


def _scan_lab_panel(text: str, scan: Scan) -> None:
    lowered = scan.lowered
    if not any(unit in lowered for unit in ("/dl", "/l", "/ml", "mmhg", "/mm3")):
        return
    results = [
        m for m in _LAB_VALUE_RE.finditer(text)
        if not _LAB_RANGE_BEFORE_RE.search(text[max(0, m.start() - 16) : m.start()])
    ]  # fmt: skip
    if len(results) >= 2:
        for m in results:
            scan.add("health", m.start(), m.end(), "lab_result", True)


# "chemo round 4 of 6", "cycle 3/8", "my third ECT session", "2nd round of radiation".
_CYCLE_WORDS = frozenset(
    {"round", "rounds", "cycle", "cycles", "session", "sessions", "course", "infusion",
     "infusions", "treatment", "treatments", "fraction", "fractions", "dose", "doses", "shot",
     "injection", "injections"}
)  # fmt: skip
_TREATMENT_WORDS = frozenset(
    {"chemo", "chemotherapy", "radiation", "radiotherapy", "ect", "electroconvulsive",
     "dialysis", "hemodialysis", "immunotherapy", "infusion", "infusions", "ivf", "iui",
     "physio", "physiotherapy", "therapy", "rehab", "ketamine", "tms", "transfusion",
     "plasmapheresis", "folfox", "folfirinox", "keytruda", "opdivo", "herceptin", "biologic",
     "remicade", "ocrevus", "entyvio", "humira", "stelara", "rituximab", "iron", "b12",
     "botox", "steroid", "steroids", "antibiotics", "ozempic", "wegovy", "mounjaro", "chemo's",
     "radiotherapy's", "proton", "brachytherapy", "cbt", "emdr", "counselling", "counseling"}
)  # fmt: skip
_ORDINAL_WORDS = frozenset(
    {"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
     "tenth", "eleventh", "twelfth", "last", "final", "next", "another", "latest", "1st", "2nd",
     "3rd"}
)  # fmt: skip
_ORDINAL_RE = re.compile(r"\d{1,2}(?:st|nd|rd|th)")


def _scan_treatment_cycles(scan: Scan) -> None:
    tokens = scan.tokens
    n = len(tokens)
    for i in compress(count(), map(_CYCLE_WORDS.__contains__, tokens)):
        window = tokens[max(0, i - 4) : i + 6]
        if _TREATMENT_WORDS.isdisjoint(window):
            continue
        first = last = i
        nxt = tokens[i + 1] if i + 1 < n else ""
        if nxt.isdigit() and len(nxt) <= 2:
            # "round 4 of 6", "cycle 3/8", "session 2"
            last = i + 1
            if i + 3 < n and tokens[i + 2] == "of" and tokens[i + 3].isdigit():
                last = i + 3
        else:
            for j in (i - 1, i - 2):
                if j >= 0 and (tokens[j] in _ORDINAL_WORDS or _ORDINAL_RE.fullmatch(tokens[j])):
                    first = j
                    break
            else:
                continue
        scan.add("health", scan.token_starts[first], scan.token_end(last), "treatment_cycle", False)


_GENERIC_OPENERS = tuple(
    sorted((_phrase_key(p) for p in lexicon.GENERIC_QUESTION_OPENERS), key=len, reverse=True)
)


# Rarer characters first: a marker holding one is looked for only when the text holds
# that character, a one-character search far cheaper than a substring search.
_MARKER_GATE_CHARS = "`#${}<=*_;("


def _marker_gates(markers: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Return (gate character or "", marker) for each marker."""
    return tuple((next((c for c in _MARKER_GATE_CHARS if c in m), ""), m) for m in markers)


_CODE_MARKER_GATES = _marker_gates(_CODE_MARKERS)
_ENV_REFERENCE_MARKER_GATES = _marker_gates(_ENV_REFERENCE_MARKERS)


def _count_markers(sample: str, gated: tuple[tuple[str, str], ...]) -> int:
    """Return how many of the markers occur in `sample`."""
    return sum(1 for gate, marker in gated if gate in sample and marker in sample)


# "Can you take ibuprofen and paracetamol together?": a question about two medicines, no one's.
_INTERACTION_QUESTION_RE = re.compile(
    r"\s*(?:can|could|should|is\s+it\s+(?:safe|ok|okay)\s+to)\s+(?:you\s+|one\s+|people\s+)?"
    r"(?:take|mix|combine|use)\s+[\w-]+\s+(?:and|with|plus|\+)\s+[\w-]+",
    re.IGNORECASE,
)


def _scan_context(text: str, scan: Scan) -> None:
    """Signals about the prompt as a whole: question form, code, references."""
    signals = scan.signals
    head = " ".join(scan.tokens[:4])
    if head.startswith(_GENERIC_OPENERS) or _INTERACTION_QUESTION_RE.match(text):
        signals["generic_opener"] = 1
    if text.rstrip().endswith("?"):
        signals["question_mark_end"] = 1
    signals["question_marks"] = text.count("?")
    sample = text[:20_000]
    signals["code_cue"] = _count_markers(sample, _CODE_MARKER_GATES)
    signals["env_reference"] = _count_markers(sample, _ENV_REFERENCE_MARKER_GATES)


def count_digits(text: str) -> int:
    """Return how many ASCII digits `text` holds (two byte-level passes, no Python loop)."""
    raw = text.encode("ascii", "ignore")
    return len(raw) - len(raw.translate(None, b"0123456789"))


def scan(text: str) -> Scan:
    """Return every piece of evidence and every signal found in `text`.

    Only the first `SCAN_CAP_CHARS` characters are scanned; offsets refer to
    the text as given. Never raises for any `str` input.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[:SCAN_CAP_CHARS]
    result = Scan(text=text)
    if not text.strip():
        return result
    lowered = text.lower()
    if len(lowered) != len(text):
        # A case mapping changed the length ("İ" lowers to two characters): lower
        # character by character instead, so offsets stay those of `text`.
        lowered = "".join(c.lower()[:1] for c in text)
    if "’" in lowered:
        lowered = lowered.replace("’", "'")  # one character for one: offsets hold
    # split() with the token group returns [gap, token, gap, token, ..., gap]; the
    # running total of the piece lengths gives every token's offset, all in C.
    # Underscores split tokens too, so "DB_PASSWORD" reads as a label.
    pieces = (_SCAN_TOKEN_SPLIT_RE if "_" in text else _TOKEN_SPLIT_RE).split(lowered)
    result.tokens = pieces[1::2]
    result.token_starts = list(accumulate(map(len, pieces)))[:-1:2]
    result.lowered = lowered
    tokens = result.tokens
    chunks = text.split()
    result.long_chunks = list(compress(chunks, map((16).__le__, map(len, chunks))))
    hits = _phrase_hits(tokens)
    positions: dict[str, list[int]] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    labels: dict[tuple[int, str], int] = {}
    topics: list[tuple[int, int, str]] = []
    role = _KIND_ROLE
    for hit in hits:
        i, size, kind = hit
        r = role[kind]
        if r == 2:
            # Keep only the longest label of each kind starting at a token.
            if size > labels.get((i, kind), 0):
                labels[(i, kind)] = size
        elif r == 3:
            topics.append(hit)
        else:
            positions.setdefault(kind, []).append(i)
            if r == 1:
                spans.setdefault(kind, []).append((result.token_starts[i], result.token_end(i + size - 1)))
    result.kind_positions = positions
    result.kind_spans = spans
    n_digits = count_digits(text)
    if n_digits:
        first_chars = map(itemgetter(0), tokens)
        result.numeric_tokens = list(compress(count(), map(_DIGIT_CHARS.__contains__, first_chars)))
    if result.numeric_tokens:
        # Where a number may begin: each number token, and the sign or bracket before it.
        starts = result.token_starts
        number_starts: list[int] = []
        for i in result.numeric_tokens:
            s = starts[i]
            if s and text[s - 1] in "+-(":
                number_starts.append(s - 1)
            number_starts.append(s)
        result.number_starts = number_starts

    taken: list[tuple[int, int]] = []
    _scan_keys(text, result)
    taken.extend(result.spans())
    if "@" in text:
        _scan_email(text, result, taken)
    if n_digits >= 8:
        _scan_iban(text, result, taken)
    # Labelled values first: a label says what a number is better than its shape.
    _scan_labels(text, result, labels, taken)
    if n_digits >= 7:
        _claim_references(text, result, lowered, taken)
    if n_digits >= 7:
        _scan_numbers(text, result, taken, n_digits)
    nino_starts = [result.token_starts[i] - 3 for i in result.numeric_tokens if len(result.tokens[i]) == 2]
    if n_digits >= 6 and nino_starts:
        # "QQ 12 34 56 C": the letters sit three characters before the first pair.
        for m in _anchored(_NINO_RE, text, [s for s in nino_starts if s >= 0]):
            start, end = m.span()
            if (
                _boundary_before(text, start)
                and m.group()[:2] not in _NINO_BAD_PREFIX
                and not _overlaps(taken, start, end)
            ):
                result.add("government_id", start, end, "nino", True)
                taken.append((start, end))
    if n_digits >= 4 and "P" in text:
        for m in _PAN_CORE_RE.finditer(text, 3):
            start, end = m.start() - 3, m.end()
            head = text[start : m.start()]
            if not (head.isalpha() and head.isupper() and head.isascii()) or not _boundary_before(
                text, start, "-"
            ):
                continue
            if _overlaps(taken, start, end):
                continue
            if head in _PAN_EXAMPLE_PREFIXES or len(set(text[start + 5 : start + 9])) == 1:
                result.signals["gov_id_placeholder"] += 1
                continue
            result.add("government_id", start, end, "gov_id", True)
            taken.append((start, end))
    _scan_high_entropy(text, result)
    _scan_spoken(text, result)
    if n_digits >= 4 and ("baby" in lowered or not _PERSON_DATE_WORDS.isdisjoint(tokens)):
        _scan_person_dates(text, result, taken)
    money: list[tuple[int, int]] = []
    if n_digits:
        _scan_devices(text, result)
        money = _scan_money(text, result)
    _scan_addresses(text, result, lowered)
    _scan_names(text, result, hits)
    _scan_context(text, result)  # before topics, which read its question-form signals
    _scan_topics(text, result, topics, money)
    if result.signals.get("card_test") and not result.signals.get("card"):
        _drop_test_card_details(result)
    if not _ORGANISATION_WORDS.isdisjoint(tokens) and not _ORGANISATION_VOICE.isdisjoint(tokens):
        _drop_business_phones(result)
    if any(prefix in lowered for prefix in _PLACEHOLDER_PREFIXES):
        _drop_placeholder_addresses(result)
    if "geboren" in lowered:
        for m in _GEBOREN_RE.finditer(text):
            if not _overlaps(taken, *m.span(1)):
                result.add("date_of_birth", m.start(1), m.end(1), "dob", True)
    if ("my " in lowered or "your " in lowered) and any(word in lowered for word in _RESULT_WORDS):
        for m in _MY_RESULT_RE.finditer(text):
            result.add("health", m.start(), m.end(), "health_self_statement", True)
    _scan_statements(text, result, lowered, taken)
    if text.count("\n") >= 1 and ("," in text or "\t" in text or "|" in text or ";" in text):
        _scan_table_columns(text, result, taken)
    if result.evidence and not _FICTION_WORDS.isdisjoint(tokens):
        # "In my thriller, ... Detective Ruth Calder's password is ...", "In my sci-fi story,
        # android KX-449 has serial 00-AB-77": a character's name, numbers and secrets.
        _drop_evidence(result, lambda e: _in_fiction(text, e.start), "fiction_name")
        preface = _FICTION_PREFACE_RE.search(text, 0, text.find("\n") if "\n" in text[:300] else 300)
        if preface is not None:
            # "I'm writing a thriller. Can you tighten this paragraph?" then the pasted scene:
            # everything after the writer's preface is the story's.
            _drop_evidence(result, lambda e: e.start >= preface.end(), "fiction_name")
    if result.signals.get("health_term_anchored") and _HEALTH_IDIOM_RE.search(lowered):
        # "this spreadsheet is giving me a heart attack", "allergic to mondays": figures of speech
        idioms = [m.span() for m in _HEALTH_IDIOM_RE.finditer(lowered)]
        _drop_evidence(
            result, lambda e: e.category == "health" and _overlaps(idioms, e.start, e.end), "health_term"
        )
    if result.signals.get("full_name") and _OFFICIAL_GATE.intersection(tokens):
        # "President Linda Marsh", "Cllr Priya Shah (Labour, Westgate ward)": office holders
        # named in their public role.
        _drop_evidence(
            result,
            lambda e: (
                e.category == "person_name"
                and _OFFICIAL_BEFORE_RE.search(text, max(0, e.start - 30), e.start)
            ),
            "public_figure",
        )
    if result.evidence and any(cue in lowered for cue in _FICTION_DECLARATION_CUES):
        declared = _FICTION_DECLARATION_RE.search(lowered)
        if declared is not None:
            # "a composite case built from several clients, no real individual", "all names are
            # fictional", "you're a patient called Maggie": the writer says nobody real is in it.
            _drop_evidence(result, lambda e: True, "fiction_name")
    if result.signals.get("account_number") or result.signals.get("sort_code"):
        # "Pay the invoice from Acme Supplies Ltd, their bank details: sort code 40-11-62, acc
        # 71930455": an organisation's account, as its IBAN would be.
        bank = ("account_number", "sort_code")
        first = min((e.start for e in result.evidence if e.kind in bank), default=-1)
        if first >= 0 and _organisation_before(result, first):
            _drop_evidence(result, lambda e: e.kind in bank and e.start - first < 80, "iban_example")
    if result.signals.get("address_public_place") or not _BUSINESS_LINE_WORDS.isdisjoint(tokens):
        _drop_public_place_phones(result)
    if "epoch" in lowered or "timestamp" in lowered or "unix" in lowered:
        _drop_timestamp_phones(result)
    if not _STATISTICS_WORDS.isdisjoint(tokens) or "%" in text:
        _drop_aggregates(result)
    if result.signals.get("dob"):
        # "born 12.03.2311": a date not yet come is a story's, not a birth date.
        _drop_evidence(
            result,
            lambda e: (
                e.kind == "dob"
                and any(int(y) > _THIS_YEAR for y in _FOUR_DIGITS_RE.findall(text, e.start, e.end))
            ),
            "dob_historic",
        )
    if "__" in text or "[" in text or "{" in text:
        _mark_template(result)
    return result


# "median 128k, p25 110k, p75 149k", "41% hypertension": figures about a group, no one in it.
_STATISTICS_WORDS = frozenset(
    {"median", "mean", "average", "avg", "p10", "p25", "p50", "p75", "p90", "p95", "percentile",
     "percentiles", "quartile", "aggregate", "aggregates", "aggregated", "distribution", "cohort",
     "patients", "respondents", "employees", "staff", "headcount"}
)  # fmt: skip
_PERCENT_BEFORE_RE = re.compile(r"\d\s?%\s*(?:of\s+(?:patients|cases|staff)\s+(?:with|had|have)\s+)?$")
_AGGREGATE_KINDS = frozenset(
    {"money_anchored", "finance_term_anchored", "health_term_anchored", "clinical_term_anchored"}
)


def _drop_aggregates(result: Scan) -> None:
    """Drop money and health cues that describe a group: a statistic's figure, a share."""
    text, lowered = result.text, result.lowered
    if any(e.category not in ("financial", "health") for e in result.evidence):
        return  # a person or an identifier is there: the figures may be theirs

    def aggregate(e: Evidence) -> bool:
        if e.kind not in _AGGREGATE_KINDS:
            return False
        if _PERCENT_BEFORE_RE.search(text, max(0, e.start - 40), e.start):
            return True
        window = lowered[max(0, e.start - 40) : e.end + 20]
        return any(word in window for word in _STATISTICS_WORDS)

    _drop_evidence(result, aggregate, "aggregate_figure")
    if result.signals.get("aggregate_figure") and not result.evidence:
        for name in ("financial_disclosure", "health_disclosure", "money"):
            result.signals.pop(name, None)  # the cues were about the group, not a person


# "Full name: ________", "[Student Name]", "{{employee_name}}": a form's blanks.
_TEMPLATE_FIELD_RE = re.compile(r"_{3,}|\[[A-Za-z][\w /.'’-]{1,40}\]|\{\{?\s*\w+\s*\}?\}")


def _mark_template(result: Scan) -> None:
    """A text with two or more blanks is a template: its names and streets are the form's."""
    fields = list(_TEMPLATE_FIELD_RE.finditer(result.text))
    if len(fields) < 2:
        return
    result.signals["example_cue"] += 1
    spans = [m.span() for m in fields]
    _drop_evidence(
        result,
        lambda e: (
            e.kind in ("name_greeting", "name_field", "street_name", "name_title")
            or _overlaps(spans, e.start, e.end)
        ),
        "template_field",
    )


# "it texted me 482913 but the page says code invalid": a code sent to the writer.
_SENT_CODE_RE = re.compile(
    r"\b(?:texted|sent|emailed|messaged|sms(?:'?e)?d|gave|give)\s+(?:me|us)\s+(?:(?:a|the|this|my|its)\s+)?"
    r"(?:(?:code|otp|pin|passcode)\s+)?(?:of\s+|as\s+)?(\d{4,8}|\d{3}[- ]\d{3})(?![\d/:-]|[.,]\d)",
    re.IGNORECASE,
)
_CODE_WORDS_RE = re.compile(
    r"code|\botp\b|verif|one[- ]time|\b2fa\b|two[- ]factor|passcode|\bpin\b", re.IGNORECASE
)
# "I'm typing 7314 which is definitely my PIN": the value before its label.
_VALUE_BEFORE_SECRET_RE = re.compile(
    r"(?<![\w.,/:-])(\d{4,8})(?![\w.,/:-])[^.\n\d]{0,40}?\b(?:is|was|as|being|=)\s+(?:[a-z]+\s+){0,2}?"
    r"(?:my|his|her|our|their|the)\s+(?:(?:atm|card|debit|bank|sim|phone|door|alarm|safe|gate|garage)\s+)?"
    r"(?:pin|passcode|pin\s+code|otp|verification\s+code|security\s+code|login\s+code)\b",
    re.IGNORECASE,
)
# "here are my google backup codes ... 8391 2047 / 5520 9183": one code a line.
_BACKUP_CODE_LINE_RE = re.compile(
    r"^[ \t]*(?:\d[.)][ \t]+)?(\d{4}[ -]?\d{4}|[a-z0-9]{4,5}-[a-z0-9]{4,5})[ \t]*$", re.MULTILINE
)
_INLINE_CODE_RE = re.compile(r"(?<![\w-])([a-z0-9]{4,5}-[a-z0-9]{4,5})(?![\w-])")
_MEDICATION_WORDS = frozenset(m for m in lexicon.HEALTH_MEDICATIONS if " " not in m)
_MEDICATION_ALTERNATION = "|".join(
    re.escape(m) for m in sorted(lexicon.HEALTH_MEDICATIONS, key=len, reverse=True)
)
# "has been on sertraline since January", "I've been self-medicating with leftover diazepam",
# "she's taking 50mg of lithium": someone taking a named medicine (not "should I take ...").
_ON_MEDICATION_RE = re.compile(
    r"\b(?:(?:i|i'm|i've|i\s+am|i\s+have|i\s+was|he|she|they|he's|she's|they're|they've|has|have|had|"
    r"i'd|been|still|currently|now)\s+)+(?:been\s+)?"
    r"(?:on|taking|takes|prescribed|started(?:\s+on|\s+taking)?|using|self-medicating\s+with|stopped|"
    r"came\s+off|coming\s+off|weaning\s+off|put\s+on|switched\s+to|upped|doubled)\s+"
    r"(?:(?:my|his|her|their|some|leftover|the|a|low[- ]dose|high[- ]dose|daily|\d+\s?mg|of)\s+)*"
    r"(" + _MEDICATION_ALTERNATION + r")\b",
    re.IGNORECASE,
)
# "I had my 12-week scan yesterday", "at her 20 week scan": a pregnancy's dating scan.
_PREGNANCY_SCAN_RE = re.compile(
    r"\b(?:my|her|our|wife's|partner's|girlfriend's)\s+(?:\d{1,2}|twelve|twenty)[- ]?(?:week|wk)\s+"
    r"(?:scan|ultrasound|appointment|check|checkup|anomaly\s+scan)\b",
    re.IGNORECASE,
)
# China's resident identity number: 17 digits (area, birth date, sequence) and a check digit.
_CN_RESIDENT_ID_RE = re.compile(
    r"(?<![\dA-Za-z])[1-6]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"
)
# ~/.pgpass: "host:port:database:user:password".
_PGPASS_RE = re.compile(r"(?<!\S)[\w.*-]+:(?:\d{2,5}|\*):[\w.*-]+:[\w.*@-]+:(\S+)[ \t]*$", re.MULTILINE)


# A passport's machine-readable zone: "P<GBRSMITH<<JOHN<<<..." then the number line.
_MRZ_RE = re.compile(
    r"\bP[A-Z<][A-Z]{3}[A-Z]+<<[A-Z<]{5,}\s*\n?\s*[A-Z0-9<]{9}\d[A-Z]{3}\d{6}\d[MFX<]\d{6}\d"
)
# A line of 12 to 24 lower-case words: a wallet's recovery phrase when the text says "seed".
_SEED_LINE_RE = re.compile(r"^[ \t]*((?:[a-z]{3,8}[ \t]+){11,23}[a-z]{3,8})[ \t]*$", re.MULTILINE)
# Poland's NRB: an IBAN without its "PL" (two check digits, 24 digits in groups of four).
_NRB_RE = re.compile(r"(?<![\d-])\d{2}(?:[ ]?\d{4}){6}(?![\d-])")
_QUERY_PARAM_RE = re.compile(r"[?&]([A-Za-z_][\w.-]{0,30})=([^&#\s\"'<>]{3,200})")
_QUERY_SECRET_KEYS = frozenset(
    {"appid", "api_key", "apikey", "key", "token", "access_token", "auth", "auth_token", "secret",
     "client_secret", "password", "pass", "pwd", "sig", "signature", "session", "sessionid", "sid"}
)  # fmt: skip
_QUERY_PHONE_KEYS = frozenset({"tel", "phone", "mobile", "msisdn", "telefon", "telefono", "cell"})
_QUERY_EMAIL_KEYS = frozenset({"email", "mail", "e-mail", "user_email", "recipient"})


def _scan_query_params(text: str, scan: Scan) -> None:
    """ "...?appid=8c3f1e9a...", "&tel=%2B48607339120", "?email=ana%40mail.com": values in URLs."""
    from urllib.parse import unquote_plus

    found = scan.spans()
    for m in _QUERY_PARAM_RE.finditer(text):
        key, raw = m.group(1).lower(), m.group(2)
        value = unquote_plus(raw)
        if _looks_placeholder(value) or _overlaps(found, *m.span(2)):
            continue
        if key in _QUERY_SECRET_KEYS and len(value) >= 16 and _complex_secret(value):
            scan.add("credential", m.start(2), m.end(2), "api_key", True)
        elif key in _QUERY_PHONE_KEYS and 8 <= len(_digits(value)) <= 15:
            scan.add("phone", m.start(2), m.end(2), "phone", True)
        elif key in _QUERY_EMAIL_KEYS and _EMAIL_RE.fullmatch(value):
            scan.add("email", m.start(2), m.end(2), "email", True)


# "priya.ramanathan [at] outlook (dot) com": an address written to dodge scrapers.
_OBFUSCATED_EMAIL_RE = re.compile(
    r"[a-z0-9._+-]{2,}\s*[\[({]\s*at\s*[\])}]\s*[a-z0-9-]+(?:\s*[\[({]\s*dot\s*[\])}]\s*[a-z0-9-]+)+"
)
# "door code 4471#", "le code de l'interphone ... c'est B2719": the way into someone's home.
_DOOR_CODE_RE = re.compile(
    r"(?:(?:door|gate|entry|keypad|lockbox|key\s*safe|garage|front\s*door|alarm)[\s-]*code|"
    r"code\s+de\s+l'interphone|code\s+(?:de\s+la\s+)?porte|digicode|t[üu]rcode|haust[üu]rcode|"
    r"c[óo]digo\s+(?:del\s+)?portal|codice\s+(?:del\s+)?cancello)"
    r"[^.\n\d]{0,40}?\b([A-Z]?\d{3,8}[#*]?)(?![\d/:.-])",
    re.IGNORECASE,
)
# The tokens every `_DOOR_CODE_RE` match holds: the pattern is tried only around them.
_DOOR_CODE_TOKENS = frozenset(
    {"code", "digicode", "türcode", "turcode", "haustürcode", "hausturcode", "código", "codigo", "codice"}
)
# "The chase text says 813507, type it in quick": the code a text message carries.
_TEXT_SAYS_RE = re.compile(
    r"\b(?:text|sms|message|msg|email)\s+(?:says|said|reads|read|has|shows)\s*:?\s*"
    r"(\d{4,8}|\d{3}[- ]\d{3})(?![\d/:-]|[.,]\d)",
    re.IGNORECASE,
)
# "after they took my gallbladder out", "had her appendix removed": someone's operation.
_ORGAN_OUT_RE = re.compile(
    r"\b(?:took|take|taking|had|having|getting|got)\s+(?:my|her|his|their|mum's|mom's|dad's)\s+"
    r"(?:gallbladder|appendix|tonsils|wisdom teeth|uterus|ovary|ovaries|kidney|spleen|thyroid|prostate|"
    r"breast|colon|adenoids)\s+(?:out|removed)\b",
    re.IGNORECASE,
)
_IMEI_ANYWHERE_RE = re.compile(r"IMEI\D{0,4}?(\d{15})(?!\d)", re.IGNORECASE)
# An iPhone's UDID since the XS: eight hex digits, a dash, sixteen more.
_UDID_RE = re.compile(r"(?<![\w-])[0-9A-F]{8}-[0-9A-F]{16}(?![\w-])")
_CJK_PASSWORD_RE = re.compile(r"(?:パスワード|密码|密碼|비밀번호)\s*(?:は|是|为|為|는|:|：)?\s*([!-~]{4,64})")
# "私の電話番号は090-4412-7738です", "我的手机号 138 0013 8000": a phone number after its
# label in scripts written without spaces.
_CJK_PHONE_RE = re.compile(
    r"(?:電話番号|電話|携帯|手机号码|手机号|手機號碼|手機|手机|电话号码|电话|電話號碼|联系电话|聯絡電話|"
    r"전화번호|연락처|핸드폰|휴대폰)[^\d\n]{0,8}?(\+?\d[\d -]{8,15}\d)"
)
# Conditions, procedures and states in Chinese, Japanese and Korean, and the words that tie
# one to the writer or a relative ("我妈妈上个月做了心脏搭桥手术", "息子が喘息なので").
_CJK_HEALTH_TERMS = (
    "糖尿病", "高血压", "高血圧", "癌", "肿瘤", "腫瘍", "抑郁", "うつ病", "焦虑症", "哮喘", "喘息",
    "手术", "手術", "怀孕", "懷孕", "妊娠", "化疗", "抗がん剤", "透析", "心脏病", "心臓病", "中风",
    "脳卒中", "艾滋", "乙肝", "确诊", "診断", "住院", "入院", "过敏", "アレルギー", "てんかん", "癫痫",
    "당뇨", "고혈압", "우울증", "천식", "수술", "임신", "입원", "진단", "항암",
)  # fmt: skip
_CJK_PERSON_CUES = (
    "我有", "我得", "我患", "我的", "我妈", "我爸", "我女", "我儿", "我老", "我丈", "我妻", "我母",
    "我父", "我奶", "我爷", "我在吃", "我被", "私の", "私は", "息子", "娘", "母", "父", "妻", "夫",
    "祖母", "祖父", "主人", "저는", "제가", "나는", "내가", "엄마", "아빠", "아들", "딸", "남편", "아내",
    # "was diagnosed" in the past: someone's diagnosis even with the subject left out
    "診断されて", "診断されました", "診断された", "被诊断出", "确诊了", "진단받았",
    # "started", "am taking": a treatment under way, the writer's
    "を始めて", "を始めました", "を飲んでいます", "服用中", "开始化疗", "在吃",
)  # fmt: skip
# "什么是糖尿病", "喘息とは": a question about the condition, not a person's.
_CJK_TOPIC_CUES = ("什么是", "是什么", "について", "とは", "이란", "무엇")
# "claimant Rosa Martínez underwent ACL reconstruction on 4 Feb": someone's operation.
_UNDERWENT_RE = re.compile(
    r"\b(?:underwent|undergoing|is\s+undergoing|has\s+undergone)\s+(?:an?\s+|the\s+|his\s+|her\s+)?"
    r"(?:[\w-]+\s+){0,2}?(?:surgery|operation|reconstruction|replacement|transplant|chemo(?:therapy)?|"
    r"radiotherapy|dialysis|biopsy|amputation|c-section|hysterectomy|mastectomy|bypass|ablation|"
    r"angioplasty|treatment|rehab(?:ilitation)?|ivf)\b",
    re.IGNORECASE,
)
# "2 lines on the covid test this morning": a home test read as positive.
_TWO_LINES_RE = re.compile(
    r"\b(?:2|two)\s+(?:pink\s+|dark\s+|faint\s+)?lines\s+on\s+(?:the|my|a|her|our)\s+"
    r"(?:covid|pregnancy|preg|lateral\s+flow|lft|rapid|home)?\s*test\b",
    re.IGNORECASE,
)


# "i only clear 1900 a month", "we bring in 5k a month", "ssdi pays me 1,284 a month": what
# someone earns per period, with no money label or currency sign.
_PAY_PERIOD_RE = re.compile(
    r"\b(?:(?:i|we)\s+(?:only\s+|just\s+|barely\s+|still\s+)?(?:clear|net|bring\s+in|bring\s+home|"
    r"get|gross|take\s+home)|(?:pays|paid|gives|give)\s+(?:me|us))\s+"
    r"(?:about\s+|around\s+|like\s+|roughly\s+|only\s+|maybe\s+)?[$£€₹]?(\d{1,3}(?:,\d{3})+|\d{3,6}|\d+(?:\.\d)?k)"
    r"\s*(?:/|a|an|per|every|each)\s*(?:month|mo|week|wk|year|yr|paycheck|check|fortnight)\b",
    re.IGNORECASE,
)
_PAY_PERIOD_TOKENS = frozenset({"month", "week", "year", "mo", "yr", "wk", "paycheck", "check", "fortnight"})
# "my wife's due date is Aug 3", "I'm due in March": a pregnancy.
_DUE_DATE_RE = re.compile(
    r"\b(?:(?:wife|partner|girlfriend|fianc[ée]e?|daughter|sister)(?:'s|’s)|i'?m|i’m|i\s+am|she'?s|she\s+is|"
    r"we'?re|we\s+are)\s+(?:due\s+date\s+is|due\s+date'?s|due\s+(?:in|on|at\s+the\s+end\s+of)\s+"
    r"(?:the\s+)?(?:\d|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|early|late|mid|spring|summer|autumn|"
    r"fall|winter))",
    re.IGNORECASE,
)
_TURN_WORDS = frozenset({"turn", "turns", "turning", "turned"})
_DUE_WORD = frozenset({"due"})
_TURNING_AGE_RE = re.compile(
    r"turn(?:s|ing|ed)?\s+(\d{1,3})\s+(?:on|this)\s+(?:the\s+)?"
    r"((?:\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:"
    + _MONTH_WORDS
    + r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec))|(?:"
    + _MONTH_WORDS
    + r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?\s+\d{1,2}(?:st|nd|rd|th)?"
    r"|christmas(?:\s+day|\s+eve)?|new\s+year'?s(?:\s+day|\s+eve)?|valentine'?s(?:\s+day)?|halloween)\b",
    re.IGNORECASE,
)
_CJK_CHAR_RE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")


def _scan_cjk(text: str, scan: Scan) -> None:
    """Phones after their label, and a condition tied to the writer or a relative, in CJK text."""
    for m in _CJK_PHONE_RE.finditer(text):
        if 10 <= len(_digits(m.group(1))) <= 13 and not _overlaps(scan.spans(), *m.span(1)):
            scan.add("phone", m.start(1), m.end(1), "phone_generic", True)
    if any(cue in text for cue in _CJK_TOPIC_CUES) or not any(cue in text for cue in _CJK_PERSON_CUES):
        return
    for term in _CJK_HEALTH_TERMS:
        at = text.find(term)
        if at >= 0:
            scan.add("health", at, at + len(term), "health_self_statement", True)
            return


def _cn_resident_id_valid(value: str) -> bool:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()


# "I have a 38,500 auto loan with Ally": the writer's own debt, with its amount.
_MY_DEBT_RE = re.compile(
    r"\b(?:i|we)(?:'ve|'m|\s+have|\s+still\s+have|\s+got|\s+owe|\s+still\s+owe|\s+took\s+out|\s+am|"
    r"\s+are|'re)?\s+(?:got\s+|paying\s+(?:off\s+|down\s+)?|carrying\s+|stuck\s+with\s+)?"
    r"(?:a\s+|an\s+|about\s+|around\s+|roughly\s+|like\s+|over\s+|almost\s+|nearly\s+)?"
    r"(?:[$£€₹]\s?)?(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?\s?k|\d{3,7})\s+(?:[\w-]+\s+){0,2}?"
    r"(?:loan|loans|mortgage|debt|car\s+payment|heloc|overdraft|balance\s+on)\b",
    re.IGNORECASE,
)
# "Available balance: 1,402.77" in a pasted statement: an account's figure.
_STATEMENT_BALANCE_RE = re.compile(
    r"\b(?:available|current|closing|ending|opening|account|new|statement|ledger)\s+balance\s*[:=]?\s*"
    r"(?:[$£€₹]\s?)?(-?\d{1,3}(?:,\d{3})*\.\d\d)(?!\d)",
    re.IGNORECASE,
)
# "Bongani Mthembu out until 5/20 recovering from ACL reconstruction": someone's operation
# or illness, said of a person (a name, a pronoun, the writer).
_RECOVERY_RE = re.compile(
    r"(?:(?i:\b(?:i|i'm|im|i\s+am|he|she|he's|she's|my\s+[a-z]+)\b)|\b[A-Z][a-z]+(?:\s+[A-Z][a-z'-]+)?\b)"
    r"[^.\n]{0,60}?\b(?:recovering|recuperating|convalescing|off\s+sick|signed\s+off)\s+(?:from|after|with)\s+"
    r"(?:(?:a|an|his|her|my|their|the)\s+)?(?:[\w-]+\s+){0,2}?(?:surgery|operation|reconstruction|replacement|"
    r"transplant|fracture|stroke|heart\s+attack|chemo(?:therapy)?|pneumonia|covid|concussion|c-section|"
    r"hysterectomy|appendectomy|mastectomy|bypass|sepsis|burnout|breakdown|miscarriage|radiotherapy)\b"
)
_SENT_WORDS = frozenset({"texted", "sent", "emailed", "messaged", "smsed", "sms'd", "gave", "give"})
_PORT_FIELD_RE = re.compile(r":(?:\d{2,5}|\*):[^\s:]+:")
_DEBT_WORDS = frozenset({"loan", "loans", "mortgage", "debt", "payment", "heloc", "overdraft", "balance"})
_RECOVERY_VERBS = ("recovering", "recuperating", "convalescing", "off sick", "signed off")
_RECOVERY_TOKENS = frozenset({"recovering", "recuperating", "convalescing", "sick", "signed"})


_BALANCE_WORD = frozenset({"balance"})


def _positions(scan: Scan, words: frozenset[str]) -> list[int]:
    """Return, in order, the indexes of the tokens that are one of ``words``.

    Cue words are rare in a prompt: the set intersection and `list.index` run in C, where a
    Python loop over a long prompt's tokens would cost a tenth of a millisecond per call.
    """
    tokens = scan.tokens
    found = words.intersection(tokens)
    if not found:
        return []
    out: list[int] = []
    for word in found:
        at = -1
        try:
            while True:
                at = tokens.index(word, at + 1)
                out.append(at)
        except ValueError:
            pass
    if len(found) > 1:
        out.sort()
    return out


def _windows(scan: Scan, token_indexes: list[int], before: int, after: int) -> list[tuple[int, int]]:
    """Return merged character windows around the given tokens (a regex need not walk the rest)."""
    windows: list[tuple[int, int]] = []
    for i in token_indexes:
        start = max(0, scan.token_starts[i] - before)
        end = min(len(scan.text), scan.token_end(i) + after)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


_TIMESTAMP_BEFORE_RE = re.compile(r"epoch|timestamp|unix|time_t|\bts\b", re.IGNORECASE)


def _scan_statements(text: str, scan: Scan, lowered: str, taken: list[tuple[int, int]]) -> None:
    """Disclosures a label does not open: codes sent to the writer, a PIN named after its
    value, backup codes, the writer's debt, a statement's balance, a recovery, someone's
    medication, a pregnancy scan, a Chinese resident ID, a .pgpass line."""
    numbers = scan.numeric_tokens
    tokens = scan.tokens
    medicines = _positions(scan, _MEDICATION_WORDS)
    for start, end in _windows(scan, medicines, 90, 40):
        for m in _ON_MEDICATION_RE.finditer(text, start, end):
            scan.add("health", m.start(1), m.end(1), "medication_statement", True)
    if numbers and ("week" in lowered or "wk" in lowered) and ("scan" in lowered or "ultrasound" in lowered):
        for m in _PREGNANCY_SCAN_RE.finditer(text):
            scan.add("health", m.start(), m.end(), "pregnancy_statement", True)
    cn_starts = [scan.token_starts[i] for i in numbers if len(scan.tokens[i]) == 18]
    if cn_starts:
        for m in _anchored(_CN_RESIDENT_ID_RE, text, cn_starts):
            # (The card reader claims every long run it checks, so judge against evidence only.)
            if not _overlaps(scan.spans(), *m.span()) and _cn_resident_id_valid(m.group()):
                scan.add("government_id", m.start(), m.end(), "gov_id", True)
                taken.append(m.span())
    if "IMEI" in text or "imei" in lowered:
        # "我的手机IMEI是862124055771393": no word boundary in scripts written without spaces.
        for m in _IMEI_ANYWHERE_RE.finditer(text):
            digits = m.group(1)
            if (
                luhn_valid(digits)
                and digits not in _EXAMPLE_IMEIS
                and not _overlaps(scan.spans(), *m.span(1))
            ):
                scan.add("device_id", m.start(1), m.end(1), "imei", True)
    if "-" in text and numbers and ("udid" in lowered or "iphone" in lowered or "ipad" in lowered):
        for m in _UDID_RE.finditer(text):
            scan.add("device_id", m.start(), m.end(), "serial", True)
    if "パスワード" in text or "密码" in text or "密碼" in text or "비밀번호" in text:
        for m in _CJK_PASSWORD_RE.finditer(text):
            if _complex_secret(m.group(1)) or len(m.group(1)) >= 8:
                scan.add("credential", m.start(1), m.end(1), "password", True)
    if _CJK_CHAR_RE.search(text):
        _scan_cjk(text, scan)
    for start, end in _windows(scan, _positions(scan, _DUE_WORD), 16, 40):
        for m in _DUE_DATE_RE.finditer(text, start, end):
            scan.add("health", m.start(), m.end(), "pregnancy_statement", True)
    for i in _positions(scan, _TURN_WORDS):
        m = _TURNING_AGE_RE.match(text, scan.token_starts[i])
        if m and (i == 0 or not _PERSON_WORDS.isdisjoint(tokens[max(0, i - 4) : i])):
            # "my daughter turns 7 on June 3rd", "I turned 40 on christmas day": a birth date
            scan.add("date_of_birth", m.start(1), m.end(2), "dob", True)
    for start, end in _windows(scan, _positions(scan, _PAY_PERIOD_TOKENS), 70, 0):
        for m in _PAY_PERIOD_RE.finditer(text, start, end):
            if not _overlaps(scan.spans(), *m.span(1)):
                scan.add("financial", m.start(1), m.end(1), "money_anchored", False)
    if "underwent" in lowered or "undergo" in lowered:
        for m in _UNDERWENT_RE.finditer(text):
            scan.add("health", m.start(), m.end(), "health_recovery", True)
    if "lines" in scan.tokens and "test" in scan.tokens:
        for m in _TWO_LINES_RE.finditer(text):
            scan.add("health", m.start(), m.end(), "health_self_statement", True)
    if ("[at]" in lowered or "(at)" in lowered or "{at}" in lowered) and "dot" in lowered:
        for m in _OBFUSCATED_EMAIL_RE.finditer(lowered):
            scan.add("email", m.start(), m.end(), "email_spoken", True)
    if "code" in lowered or "codi" in lowered:
        for start, end in _windows(scan, _positions(scan, _DOOR_CODE_TOKENS), 25, 90):
            for m in _DOOR_CODE_RE.finditer(text, start, end):
                if not _overlaps(taken, *m.span(1)):
                    scan.add("credential", m.start(1), m.end(1), "pin", True)
    if numbers and ("text" in lowered or "sms" in lowered or "message" in lowered):
        for m in _TEXT_SAYS_RE.finditer(text):
            if not _overlaps(taken, *m.span(1)):
                scan.add("credential", m.start(1), m.end(1), "otp", True)
                taken.append(m.span(1))
    if " out" in lowered and ("took" in lowered or "removed" in lowered or "had" in lowered):
        for m in _ORGAN_OUT_RE.finditer(text):
            scan.add("health", m.start(), m.end(), "health_recovery", True)
    if "WIFI:" in text:
        # "WIFI:T:WPA;S:VM4827193;P:zq7Lmnk2Tpxw;;": a network's QR code carries its key.
        for m in _WIFI_QR_RE.finditer(text):
            if not _looks_placeholder(m.group(1)) and len(m.group(1)) >= 6:
                scan.add("credential", m.start(1), m.end(1), "password", True)
    if "(" in text and ("pw" in tokens or "password" in tokens or "pwd" in tokens or "passcode" in tokens):
        # "my bank app pw is the same as my email one (Chelsea#1905)": the value in brackets
        for m in _PASSWORD_BRACKETED_RE.finditer(text):
            if _complex_secret(m.group(1)) and not _overlaps(scan.spans(), *m.span(1)):
                scan.add("credential", m.start(1), m.end(1), "password", True)
    if "period" in tokens or "period's" in tokens:
        for m in _LATE_PERIOD_RE.finditer(text):
            scan.add("health", m.start(), m.end(), "pregnancy_statement", True)
    if "<<" in text:
        for m in _MRZ_RE.finditer(text):
            scan.add("government_id", m.start(), m.end(), "gov_id", True)
    if "?" in text and "=" in text and "://" in text:
        _scan_query_params(text, scan)
    if any(cue in lowered for cue in ("seed", "mnemonic", "recovery phrase", "secret phrase")):
        for m in _SEED_LINE_RE.finditer(lowered):
            words = m.group(1).split()
            if len(words) in (12, 15, 18, 21, 24) and _NOT_SEED_WORDS.isdisjoint(words):
                scan.add("credential", m.start(1), m.end(1), "seed_phrase", True)
    if count_digits(text) >= 26 and ("konta" in lowered or "rachunk" in lowered or "przelew" in lowered):
        for m in _NRB_RE.finditer(text):
            digits = _digits(m.group())
            if not _overlaps(scan.spans(), *m.span()) and iban_valid("PL" + digits):
                scan.add("bank_account", m.start(), m.end(), "iban", True)
    if text.count(":") >= 4 and _PORT_FIELD_RE.search(text):
        for m in _PGPASS_RE.finditer(text):
            if _complex_secret(m.group(1)) and m.group(1) != "*":
                scan.add("credential", m.start(1), m.end(1), "password", True)
    if numbers and ("code" in lowered or "otp" in lowered or "pin" in scan.tokens):
        senders = [scan.token_starts[i] for i in _positions(scan, _SENT_WORDS)]
        for m in _anchored(_SENT_CODE_RE, text, senders):
            nearby = _window(text, m.start(), m.end(), 80)
            if not _overlaps(taken, *m.span(1)) and _CODE_WORDS_RE.search(nearby):
                scan.add("credential", m.start(1), m.end(1), "otp", True)
                taken.append(m.span(1))
        for m in _anchored(_VALUE_BEFORE_SECRET_RE, text, scan.number_starts):
            if not _overlaps(taken, *m.span(1)) and m.group(1) not in ("0000", "1234", "123456"):
                scan.add("credential", m.start(1), m.end(1), "pin", True)
                taken.append(m.span(1))
        if "backup code" in lowered or "recovery code" in lowered:
            lines = [m for m in _BACKUP_CODE_LINE_RE.finditer(text) if not _overlaps(taken, *m.span(1))]
            if len(lines) < 2:
                # "4f2a9-c81d7 0b6e3-5a9f1 77c2d-e40b8 ...": the codes on one line.
                lines = [m for m in _INLINE_CODE_RE.finditer(text) if not _overlaps(taken, *m.span(1))]
            if len(lines) >= 2:
                for m in lines:
                    scan.add("credential", m.start(1), m.end(1), "backup_code", True)
                    taken.append(m.span(1))
    if numbers and not _DEBT_WORDS.isdisjoint(tokens):
        debts = _positions(scan, _DEBT_WORDS)
        for start, end in _windows(scan, debts, 120, 12):
            for m in _MY_DEBT_RE.finditer(text, start, end):
                if not _overlaps(taken, *m.span(1)):
                    scan.add("financial", m.start(1), m.end(1), "debt_statement", True)
    if numbers and "balance" in tokens:
        balances = _positions(scan, _BALANCE_WORD)
        for start, end in _windows(scan, balances, 30, 40):
            for m in _STATEMENT_BALANCE_RE.finditer(text, start, end):
                if not _overlaps(taken, *m.span(1)) and _digits(m.group(1)).strip("0"):
                    scan.add("financial", m.start(1), m.end(1), "statement_balance", True)
    if any(verb in lowered for verb in _RECOVERY_VERBS):
        verbs = _positions(scan, _RECOVERY_TOKENS)
        for start, end in _windows(scan, verbs, 90, 90):
            for m in _RECOVERY_RE.finditer(text, start, end):
                scan.add("health", m.start(), m.end(), "health_recovery", True)


def _drop_public_place_phones(result: Scan) -> None:
    """ "a review for Rosetti's Bakery (2231 NE Alberta St, Portland, (503) 288-4410)", "main
    line 023 9200 0000": the number of a public place or an organisation's service line."""
    text = result.text
    _drop_business_phones(
        result,
        lambda e: (
            _public_place_before(result, e.start)
            or bool(_BUSINESS_LINE_RE.search(_sentence_before(text, e.start, 80).lower()))
        ),
    )


def _sentence_before(text: str, start: int, width: int) -> str:
    """Return up to ``width`` characters before ``start``, not reaching back past a sentence end."""
    window = text[max(0, start - width) : start]
    cut = max(window.rfind(". "), window.rfind("\n"), window.rfind("! "), window.rfind("? "))
    return window[cut + 1 :]


# The words that open `_BUSINESS_LINE_RE`'s phrases: a cheap test before any regex runs.
_BUSINESS_LINE_WORDS = frozenset(
    {"main", "switchboard", "front", "enquiries", "inquiries", "bookings", "helpline", "hotline",
     "reception", "office", "customer", "service", "servizio", "assistenza", "atendimento", "atención",
     "kundenservice", "kundendienst", "klantenservice", "obsługa"}
)  # fmt: skip
# "main line 023 9200 0000", "switchboard: ...": an organisation's number by its name.
_BUSINESS_LINE_RE = re.compile(
    r"main line|main number|switchboard|front desk|enquiries|inquiries line|bookings line|helpline|"
    r"hotline|reception desk|office line|customer service|service client|servizio clienti|assistenza clienti|"
    r"atendimento|atención al cliente|kundenservice|kundendienst|klantenservice|obsługa klienta"
)


def _drop_timestamp_phones(result: Scan) -> None:
    """ "convert epoch 1712345678 and 1712432078": ten digits after "epoch" are seconds."""
    text = result.text
    _drop_evidence(
        result,
        lambda e: (
            e.kind in _PHONE_KINDS
            and text[e.start : e.end].isdigit()
            and bool(_TIMESTAMP_BEFORE_RE.search(text, max(0, e.start - 60), e.start))
        ),
        "timestamp_number",
    )


# "Add our contact block to the website footer: Brightwell Logistics Ltd, ... Tel 0113 496
# 0200": an organisation's switchboard identifies no person. The writer speaks for (or about)
# an organisation, and no personal word stands by the number. (Its address is judged like any
# public place's, see `_public_place_before`.)
_ORGANISATION_WORDS = frozenset(
    {"ltd", "limited", "inc", "llc", "plc", "gmbh", "corp", "company", "clinic", "café", "cafe",
     "restaurant", "shop", "store", "council", "bank", "hotel", "salon", "pharmacy", "surgery",
     "bakery", "pub", "studio", "agency", "firm", "practice", "consultancy", "charity",
     "headquarters", "hq", "switchboard", "helpdesk", "reception", "business", "website",
     "footer", "vcard", "tender", "supplier", "suppliers", "customers", "bookings", "opening",
     "office", "offices", "clinic's", "company's", "shop's", "café's", "cafe's", "restaurant's",
     "bank's", "hotel's", "council's", "practice's", "newsletter", "supplier's", "invoice",
     "negozio", "tienda", "boutique", "geschäft", "laden", "loja", "winkel", "empresa", "azienda",
     "entreprise", "firma"}
)  # fmt: skip
# ... and speaks as one ("our", "we") or writes out its name, desk or contact card.
_ORGANISATION_VOICE = frozenset(
    {"our", "we", "we're", "us", "ltd", "limited", "inc", "llc", "plc", "gmbh", "corp", "nostro",
     "nostra", "nuestro", "nuestra", "notre", "nos", "unser", "unsere", "unseren", "nosso", "nossa",
     "onze", "srl", "spa", "sl", "sarl", "bv",
     "switchboard", "helpdesk", "desk", "reception", "vcard", "footer"}
)  # fmt: skip
_PERSONAL_PHONE_RE = re.compile(
    r"cell|mobile|personal|home|whatsapp|private|direct|callback|call back|reach|text|\bmy\b|\bme\b|\bi'?m\b",
    re.IGNORECASE,
)
_PHONE_KINDS = frozenset({"phone", "phone_intl", "phone_local", "phone_generic"})


# "Ich bin am 19.04.1985 geboren": German puts the date between "am" and "geboren".
_GEBOREN_RE = re.compile(
    r"\b(?:bin|ist|wurde|wurden|sind)\s+(?:am\s+)?(" + _DATE_SRC + r")\s+(?:in\s+\w+\s+)?geboren",
    re.IGNORECASE,
)
# "My HIV test came back positive", "my biopsy results were abnormal": the writer's own result.
_RESULT_WORDS = ("positive", "abnormal", "malignant", "cancerous", "reactive", "elevated", "undetectable")
_MY_RESULT_RE = re.compile(
    r"\b(?:my|your)\s+(?:[\w-]+\s+){0,2}?(?:test|tests|results?|biopsy|scan|swab|screening|bloodwork|labs?|"
    r"smear|mammogram|culture|panel|ultrasound|mri|ct|viral\s+load|cd4(?:\s+count)?)\s+"
    r"(?:(?:from|on|of|dated)\s+[\w/.-]+\s+)?"
    r"(?:came\s+back|was|were|is|are|showed|shows|returned|has\s+been|have\s+been|stays?|stayed)"
    r"\s+(?:\w+\s+)?(?:positive|abnormal|malignant|cancerous|reactive|elevated|undetectable)\b",
    re.IGNORECASE,
)


def _drop_evidence(result: Scan, drop: Callable[[Evidence], bool], counted_as: str) -> None:
    """Remove the evidence ``drop`` selects; its signal counts move to ``counted_as``."""
    kept = []
    for evidence in result.evidence:
        if drop(evidence):
            result.signals[evidence.kind] -= 1
            result.signals[counted_as] += 1
        else:
            kept.append(evidence)
    result.evidence = kept


def _drop_placeholder_addresses(result: Scan) -> None:
    """ "Max Mustermann, Musterstraße 1": the form's stand-in person and address."""
    lowered = result.lowered
    _drop_evidence(
        result,
        lambda e: (
            e.category in ("address", "person_name")
            and any(p in lowered[e.start : e.end] for p in _PLACEHOLDER_PREFIXES)
        ),
        "address_placeholder",
    )


def _drop_business_phones(result: Scan, also: Callable[[Evidence], bool] = lambda e: True) -> None:
    """Drop phones with no personal word around them (and for which ``also`` holds), unless a
    person is named."""
    if any(evidence.category == "person_name" for evidence in result.evidence):
        return  # a named person's number, even in a company's message
    text = result.text
    _drop_evidence(
        result,
        lambda e: (
            e.kind in _PHONE_KINDS
            and also(e)
            and not _PERSONAL_PHONE_RE.search(text, max(0, e.start - 30), e.end + 12)
        ),
        "phone_business",
    )


def _drop_test_card_details(result: Scan) -> None:
    """An expiry or CVV typed with a documented test card ("4242 4242 4242 4242, exp 12/34,
    cvc 123") belongs to the test card: it discloses nobody's card."""
    _drop_evidence(result, lambda e: e.kind in ("card_expiry", "cvv", "card_last4"), "card_test_detail")
