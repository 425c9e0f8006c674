"""Tests for the payload sensitivity classifier (FIG. 2.3 step 242).

The realistic prompt table below was written by hand for these tests; it
shares no text with the synthetic training templates or with the public
dev set. The classifier is trained once per session on a small corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from variants.sensitivity import (
    CATEGORIES,
    SensitivityResult,
    load_classifier,
    train_classifier,
)
from variants.sensitivity.patterns import (
    aba_routing_valid,
    iban_valid,
    luhn_valid,
    nhs_number_valid,
    scan,
    ssn_valid,
    verhoeff_valid,
)

# The shipped default (about twenty seconds to train), so these tests judge the model users
# get: smaller corpora give rare signals unstable weights and the test model drifts from it.
TEST_CORPUS_SIZE = 30_000

SENSITIVE_PROMPTS: list[tuple[str, set[str]]] = [
    (
        "Hey, can you help me write an email to my landlord? My name is Daniel Kowalczyk and I "
        "rent the flat at 14 Brunswick Road, Leeds LS2 7QA. The boiler has been broken for two "
        "weeks.",
        {"person_name", "address"},
    ),
    (
        "I just got my blood test back: HbA1c 8.2, fasting glucose 160. My doctor wants to start "
        "me on metformin. Is that a lot?",
        {"health"},
    ),
    ("can u check if this card works 4716 8935 2207 4413 exp 09/27", {"payment_card"}),
    (
        "My SSN is 412-56-7823 and the IRS letter says my return was rejected. What do I do?",
        {"government_id"},
    ),
    (
        "Please wire the deposit to my account: IBAN DE75 5121 0800 1245 1261 99, thanks!",
        {"bank_account"},
    ),
    (
        "here's my .env, why won't it connect?\nOPENAI_API_KEY=sk-proj-8Hq2LmZx91TqWcR4vBn7YkE3pD6sUa0J",
        {"credential"},
    ),
    (
        "I've been taking 20mg of Lexapro for my anxiety since March and I feel numb. Should I "
        "ask to lower the dose?",
        {"health"},
    ),
    (
        "My husband lost his job and we're $14,000 behind on credit cards. Our credit score "
        "dropped to 580. Any advice?",
        {"financial"},
    ),
    (
        "The verification code from the bank is 582 913 - is it safe to read it out to the "
        "person on the phone?",
        {"credential"},
    ),
    (
        "Our wifi password is Blue-Harbor-2291, can you make a printable sign for guests?",
        {"credential"},
    ),
    ("My phone was stolen, IMEI 356938035643809. How do I report it?", {"device_id"}),
    (
        "Write a cover letter for me. Contact: priya.raghunathan88@gmail.com, +91 98450 12367",
        {"email", "phone"},
    ),
    (
        "Date of birth 14/02/1989, passport number 533178912 - can you fill in this visa form?",
        {"date_of_birth", "government_id"},
    ),
    (
        "My daughter Emma (she's 7) was diagnosed with type 1 diabetes last week. How do I "
        "explain insulin shots to her?",
        {"health"},
    ),
    (
        "Translate to Spanish: 'Hi, this is Marcus Bell, call me back at (312) 647-2290 about "
        "the apartment.'",
        {"person_name", "phone"},
    ),
    (
        "Draft a note to HR: I need to take medical leave next month for my hysterectomy.",
        {"health"},
    ),
    (
        "My router keeps dropping my laptop. Its MAC is 3C:A9:F4:5B:20:E1, how do I reserve an "
        "address for it?",
        {"device_id"},
    ),
    (
        "I earn 52k a year, pay $1,400 rent and still owe 9k on my car loan - can I afford a vacation?",
        {"financial"},
    ),
    (
        "Login for the shared reporting account is ops@northwind.io / Summer2024! - can you "
        "check if the reports ran?",
        {"credential"},
    ),
    (
        "My dad is 78 and was just diagnosed with early-stage Parkinson's. What should we expect?",
        {"health"},
    ),
    (
        "Send a reminder to Jessica Moreno (jessica.m@outlook.com) that her rent is late.",
        {"person_name", "email"},
    ),
    (
        "git remote set-url origin "
        "https://kwilson:ghp_4Tg7Hk2LmQ9xZpR8sVb3NcW5yJd1Ea6Fu0Io@github.com/kwilson/app.git",
        {"credential"},
    ),
    ("My NI number is QH 48 27 91 C and HMRC says it doesn't match my payslip.", {"government_id"}),
    (
        "I'm 6 weeks pregnant and haven't told anyone yet. Is it safe to keep taking my sertraline?",
        {"health"},
    ),
    ("my pasword for the bank app is tigerlily77 but it says wrong, help", {"credential"}),
    (
        "I owe the IRS about $6,300 from last year and can't pay it all at once.",
        {"financial"},
    ),
    (
        "Please ship the replacement to 2217 Sycamore Lane, Apt 4, Boise, ID 83702.",
        {"address"},
    ),
    ("I'm at 51.5033, -0.1196 and my phone is about to die, send help", {"location"}),
]

# Disclosures without the obvious cue word: implied by the sentence, misspelt, about a
# relative or a client, or a credential with no "password" in sight.
IMPLIED_SENSITIVE_PROMPTS: list[tuple[str, set[str]]] = [
    ("Biopsy came back positive, the oncologist wants to start treatment next week.", {"health"}),
    ("Been on lithium since May and my hands are still shaky.", {"health"}),
    ("My mom's neurologist confirmed Parkinson's this morning.", {"health"}),
    ("We owe 38k on the car and I only make 41k a year.", {"financial"}),
    ("Overdrawn by $212 again and payday isn't until the 30th.", {"financial"}),
    ("login is mreyes / Qv7#pLm29x, check the invoices tab", {"credential"}),
    ("here's the token: ghp_Lq8Zr3Xw5Tn7Vb2Mc9Kd4Hs6Jf1Ga0Pe8Yu", {"credential"}),
    ("keypad code for the back gate is 4829, tell the plumber", {"credential"}),
    ("my adress is 48 Tamarack Drive, Flagstaff AZ 86001", {"address"}),
    ("social securty 529-31-8846, is the form right?", {"government_id"}),
    ("My client's card 4929 1239 3704 5052 was charged twice, draft a dispute.", {"payment_card"}),
    ("stolen phone, imei 35 355251 377904 4, what now", {"device_id"}),
]

NON_SENSITIVE_PROMPTS: list[str] = [
    "How does a credit score work?",
    "000-00-0000 is an invalid SSN, right?",
    "What are the side effects of metformin?",
    "Write a Python function that validates credit card numbers with the Luhn algorithm.",
    "What's the capital of Portugal?",
    "How do I find the IMEI on my Android phone?",
    "Summarize the main causes of World War I.",
    "Explain what an IBAN is and how its check digits work.",
    "When was Barack Obama born?",
    "How should I store API keys in a Node.js project? I don't want to commit them.",
    "Give me a 5-day meal plan for someone trying to lower cholesterol.",
    "Is it normal for a cat to sleep 16 hours a day?",
    "Use the Stripe test card 4242 4242 4242 4242 with any future expiry date.",
    "What is the average salary for a nurse in Texas?",
    "My code fails with 'password authentication failed for user postgres' - what does it mean?",
    "Write a short story about a detective named Clara Voss who solves a museum theft.",
    "The meeting moved to 3:30pm on March 12 in room 204.",
    "What's the difference between a Roth IRA and a traditional IRA?",
    "How can I tell if someone is having a panic attack, and how do I help?",
    "Set temperature to 0.2 and max_tokens to 800 for this request.",
    "Contact support@example.com if the installer fails.",
    "Why is my sourdough so dense? I feed the starter every 12 hours.",
    "What's a good password manager for a family?",
    "I'm planning a week in Japan in April, which cities should I visit?",
    "Explain how two-factor authentication protects accounts.",
    "Proofread: 'Quarterly revenue grew 12% to $4.1M, driven by the new EU contracts.'",
    "Is 4716 8935 2207 4414 a valid card number? I think the last digit is off.",
    "Write a SQL query that counts orders per customer in 2023.",
]

# Keyword traps: the words of a disclosure, nobody's facts.
TRAP_PROMPTS: list[str] = [
    "What does a credit score of 650 mean for a car loan, generally?",
    "How is type 2 diabetes usually treated?",
    "How do I reset the wifi password on my router?",
    "api_key = os.environ['PAYMENTS_API_KEY']  # never commit YOUR_API_KEY",
    "What can an oncologist tell from a biopsy?",
    "When was Serena Williams born?",
    "How many characters does a German IBAN have?",
]


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sensitivity")
    train_classifier(out, seed=0, n_examples=TEST_CORPUS_SIZE)
    return out


@pytest.fixture(scope="session")
def classifier(trained_dir: Path):  # noqa: ANN201 - returns the package's Classifier
    return load_classifier(trained_dir)


# -- validators ---------------------------------------------------------------


def test_luhn_accepts_valid_card_numbers_and_rejects_one_digit_changes() -> None:
    assert luhn_valid("4716893522074413")
    assert luhn_valid("378282246310005")
    assert luhn_valid("356938035643809")  # an IMEI uses the same check
    assert not luhn_valid("4716893522074414")
    assert not luhn_valid("4716893522074412")
    assert not luhn_valid("")
    assert not luhn_valid("4716-8935")


def test_iban_mod97_accepts_valid_ibans_and_rejects_wrong_check_digits_or_lengths() -> None:
    assert iban_valid("DE75512108001245126199")
    assert iban_valid("GB78 NWBK 6016 1331 9268 10")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE76512108001245126199")  # check digits off by one
    assert not iban_valid("DE7551210800124512619")  # one character short for DE
    assert not iban_valid("XX75512108001245126199")  # no such country


def test_an_iban_typed_in_lower_case_is_found_and_still_checked() -> None:
    found = scan("my iban is gb42nawi04454264788619")
    assert [(e.category, e.kind, e.strong) for e in found.evidence] == [("bank_account", "iban", True)]
    # Check digits off by one: the writer's own account, mistyped, is weaker evidence.
    wrong = scan("my iban is gb43nawi04454264788619")
    assert [(e.kind, e.strong) for e in wrong.evidence] == [("iban_unverified", False)]
    asked = scan("why does gb43nawi04454264788619 fail the IBAN check?")
    assert asked.evidence == []
    assert asked.signals["iban_invalid"] == 1


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # Street names in any script after a cue.
        ("Tilly Nicholson lives at 10252 Μεγάλη Άμμος 184, ΠΑΦΟΣ", "10252 Μεγάλη Άμμος 184"),
        # The answer to "what is your address?".
        ("What is your address? it is 5638 Aasa 43 Humilimont, nan 78618", "5638 Aasa 43 Humilimont"),
        # A building number before the street number.
        ("his address: 83393 33 Pärna, Tallinn", "83393 33 Pärna"),
    ],
)
def test_addresses_after_a_cue_are_found_in_more_forms(text: str, address: str) -> None:
    found = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence if e.category == "address"]
    assert found == [("street_after_cue", address)]


def test_a_question_about_an_address_format_is_not_an_address() -> None:
    assert scan("What is your address format? We store it as 3 fields").evidence == []


def test_ssn_rules_reject_area_000_666_900s_group_00_and_serial_0000() -> None:
    assert ssn_valid("412", "56", "7823")
    assert not ssn_valid("000", "56", "7823")
    assert not ssn_valid("666", "56", "7823")
    assert not ssn_valid("912", "56", "7823")
    assert not ssn_valid("412", "00", "7823")
    assert not ssn_valid("412", "56", "0000")


def test_other_check_digit_schemes_accept_known_good_values() -> None:
    assert aba_routing_valid("021000021")
    assert not aba_routing_valid("021000022")
    assert nhs_number_valid("9434765919")
    assert not nhs_number_valid("9434765918")
    assert verhoeff_valid("2363")
    assert not verhoeff_valid("2364")


def test_scan_reports_invalid_numbers_as_traps_not_evidence() -> None:
    result = scan("000-00-0000 is invalid and so is 4716 8935 2207 4414")
    assert result.evidence == []
    assert result.signals["ssn_invalid"] == 1
    assert result.signals["card_invalid"] == 1


def test_scan_finds_validated_values_with_exact_spans() -> None:
    text = "card 4716 8935 2207 4413, mail jo.ana@gmail.com, IBAN DE75 5121 0800 1245 1261 99"
    found = {(e.category, text[e.start : e.end]) for e in scan(text).evidence if e.strong}
    assert ("payment_card", "4716 8935 2207 4413") in found
    assert ("email", "jo.ana@gmail.com") in found
    assert ("bank_account", "DE75 5121 0800 1245 1261 99") in found


@pytest.mark.parametrize(
    ("text", "category", "value"),
    [
        ("call me on +44 7700 900456 tonight", "phone", "+44 7700 900456"),
        ("my cell is (312) 647-2290", "phone", "(312) 647-2290"),
        ("they're not answering at 374 780 163", "phone", "374 780 163"),
        ("ship it to 2217 Sycamore Lane, Boise", "address", "2217 Sycamore Lane"),
        ("we live on Hauptstraße 12 in Berlin", "address", "Hauptstraße 12"),
        ("DOB: 14/02/1989", "date_of_birth", "14/02/1989"),
        ("routing 021000021 account 4471920381", "bank_account", "4471920381"),
        ("the wifi password is Blue-Harbor-2291", "credential", "Blue-Harbor-2291"),
        ("AKIAZ7QW3XKP9LMN4RTE is the key id", "credential", "AKIAZ7QW3XKP9LMN4RTE"),
        ("laptop MAC 3C:A9:F4:5B:20:E1", "device_id", "3C:A9:F4:5B:20:E1"),
        ("IMEI 356938035643809", "device_id", "356938035643809"),
        ("MAC 7C 2E 0D 91 A4 3B is my son's laptop", "device_id", "7C 2E 0D 91 A4 3B"),
        ("keypad for the back gate: 4829", "credential", "4829"),
        ("the padlock combo is 3-8-1-6", "credential", "3-8-1-6"),
        (
            "webhook https://hooks.slack.com/services/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",
            "credential",
            "hooks.slack.com/services/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",
        ),
        ("PSC 4412, Box 2231, APO AE 09012", "address", "PSC 4412, Box 2231, APO AE 09012"),
    ],
)
def test_recognisers_find_common_formats(text: str, category: str, value: str) -> None:
    found = {(e.category, text[e.start : e.end]) for e in scan(text).evidence if e.strong}
    assert (category, value) in found


@pytest.mark.parametrize(
    "text",
    [
        "Email support@acme.io if the installer fails.",  # a role address
        "Use 4242 4242 4242 4242 in Stripe test mode.",  # a published test card
        "In the film he dials 555-0142 and nobody answers.",  # a fictional number
        "Our hotline is 1-800-669-3546, open 24/7.",  # a business line
        "api_key = 'YOUR_API_KEY'",  # a placeholder
        "The default MAC 00:00:00:00:00:00 disables the port.",  # a placeholder
        "IBAN in our docs: GB82 WEST 1234 5698 7654 32",  # the standard example IBAN
        "The Treaty of Versailles was signed on 28 June 1919.",  # a date, nobody's birth
        "The sample MAC 00 1A 2B 3C 4D 5E in the manual is made up.",  # a placeholder, spaced
        "What does an APO AE address mean on a form?",  # the format, nobody's address
    ],
)
def test_traps_leave_no_validated_evidence(text: str) -> None:
    assert [e for e in scan(text).evidence if e.strong] == []


def test_spans_stay_exact_when_lowercasing_changes_the_text_length() -> None:
    # "İ" lowers to two characters; offsets must still point into the original text.
    text = "İİİ card 4716 8935 2207 4413, I’m Maria Gonzalez"
    found = {(e.category, text[e.start : e.end]) for e in scan(text).evidence}
    assert ("payment_card", "4716 8935 2207 4413") in found
    assert ("person_name", "Maria Gonzalez") in found


# -- the trained classifier ---------------------------------------------------


@pytest.mark.parametrize(("prompt", "expected"), SENSITIVE_PROMPTS)
def test_realistic_sensitive_prompt_is_flagged_with_its_categories(
    classifier, prompt: str, expected: set[str]
) -> None:
    result = classifier.classify(prompt)
    assert result.sensitive, f"score {result.score:.3f} for {prompt!r}"
    assert expected <= set(result.categories), result.categories


@pytest.mark.parametrize(("prompt", "expected"), IMPLIED_SENSITIVE_PROMPTS)
def test_implied_misspelt_and_third_party_disclosures_are_flagged(
    classifier, prompt: str, expected: set[str]
) -> None:
    result = classifier.classify(prompt)
    assert result.sensitive, f"score {result.score:.3f} for {prompt!r}"
    assert expected <= set(result.categories), result.categories


@pytest.mark.parametrize("prompt", NON_SENSITIVE_PROMPTS + TRAP_PROMPTS)
def test_realistic_non_sensitive_prompt_is_not_flagged(classifier, prompt: str) -> None:
    result = classifier.classify(prompt)
    assert not result.sensitive, f"score {result.score:.3f} for {prompt!r}"


def test_scores_stay_within_zero_and_one_for_odd_inputs(classifier) -> None:
    odd = ["", "   ", "\x00\x01", "🙂" * 500, "İstanbul ǅ ß" * 50, "a" * 250_000, "1" * 5000]
    for text in odd:
        result = classifier.classify(text)
        assert isinstance(result, SensitivityResult)
        assert 0.0 <= result.score <= 1.0
        assert not result.failed_closed
        assert set(result.categories) <= set(CATEGORIES)


def test_non_string_input_is_coerced_not_raised(classifier) -> None:
    assert 0.0 <= classifier.classify(None).score <= 1.0  # type: ignore[arg-type]
    assert classifier.classify(b"My SSN is 412-56-7823").sensitive  # type: ignore[arg-type]


def test_hits_point_at_the_evidence_in_the_text(classifier) -> None:
    text = "Please call me on (312) 647-2290 tomorrow."
    result = classifier.classify(text)
    assert ("phone", "(312) 647-2290") in {(h.category, text[h.start : h.end]) for h in result.hits}


def test_saved_artifact_reloads_to_identical_scores(classifier, tmp_path: Path) -> None:
    classifier.save(tmp_path / "copy")
    reloaded = load_classifier(tmp_path / "copy")
    prompts = [p for p, _ in SENSITIVE_PROMPTS] + NON_SENSITIVE_PROMPTS
    assert [classifier.classify(p).score for p in prompts] == [reloaded.classify(p).score for p in prompts]
    assert reloaded.meta["version"] == classifier.meta["version"]


def test_artifact_metadata_records_version_config_hash_and_heldout_metrics(trained_dir: Path) -> None:
    import json

    meta = json.loads((trained_dir / "meta.json").read_text())
    assert meta["version"].startswith("sens-")
    assert len(meta["feature_config_hash"]) == 16
    assert meta["training"]["n_examples"] == TEST_CORPUS_SIZE
    heldout = meta["metrics"]["heldout_templates"]
    assert heldout["n"] > 1000
    assert heldout["f1"] > 0.8
    assert 0.0 < meta["threshold"] < 1.0
    # No pickle: every array loads with pickling disabled.
    with np.load(trained_dir / "weights.npz", allow_pickle=False) as data:
        assert data["dense_weights"].dtype == np.float64


def test_training_is_deterministic_for_a_seed(tmp_path: Path, classifier) -> None:
    metrics = train_classifier(tmp_path / "again", seed=0, n_examples=TEST_CORPUS_SIZE)
    again = load_classifier(tmp_path / "again")
    assert metrics["version"] == classifier.meta["version"]
    assert again.weights_digest() == classifier.weights_digest()


def test_artifact_from_another_feature_config_is_refused(trained_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    copy = tmp_path / "stale"
    shutil.copytree(trained_dir, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["feature_config_hash"] = "0" * 16
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="feature config"):
        load_classifier(copy)


# -- inference shortcuts give the reference answers ---------------------------------


def test_classify_scores_equal_the_reference_feature_path(classifier) -> None:
    """`classify` scores n-grams without building their set; the answer must not change."""
    from variants.sensitivity import features as F

    prompts = [p for p, _ in SENSITIVE_PROMPTS] + NON_SENSITIVE_PROMPTS
    prompts += [
        "",
        "ok",
        "DB_PASSWORD=Tr0ub4dor&3 and REDIS_URL for the staging_box",
        "the the the the diabetes diabetes the the",
        "İstanbul ǅ ß " * 40,
        " ".join(f"word{i} unseenword{i % 7}" for i in range(400)),
    ]
    for prompt in prompts:
        reference = classifier.score_features(F.extract(prompt))
        assert classifier.classify(prompt).score == pytest.approx(reference, abs=1e-12), prompt


def test_ngram_scorer_counts_each_distinct_gram_once() -> None:
    from variants.sensitivity import features as F

    tokens = ["diabetes", "diabetes", "and", "diabetis", "and", "diabetes"]
    grams = F.ngrams(tokens)
    weights = {gram: float(k + 1) for k, gram in enumerate(sorted(grams, key=F.gram_name))}
    weights[("never", "seen")] = 100.0
    total, count = F.NgramScorer(weights).score(tokens)
    assert count == len(grams)
    assert total == sum(weights[g] for g in grams)


def test_military_addresses_are_read_as_the_full_pattern_reads_them() -> None:
    from variants.sensitivity.patterns import _MILITARY_POST_RE, _military_posts

    texts = [
        "Ship to PSC 1234, Box 5678 APO AE 09012 please, or Unit 2050 Box 4190 APO AP 96278.",
        "USNS Comfort, FPO AA 34090 and then DPO AE 09498-0001 and XAPO AE 12345",
        "Unit   45, Box 9\nAPO AE 09012; CMR 480 Box 1234, APO AE 09128",
        "no military post here, just APO and a PSC",
    ]
    for text in texts:
        assert _military_posts(text) == [m.span() for m in _MILITARY_POST_RE.finditer(text)]
    assert _military_posts(texts[0])


# -- tax IDs, regimens, treatment cycles, sick leave and misspelt labels -------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("for my taxes this year use 912-78-4521 please", "912-78-4521"),
        ("the IRS sent back my W-7, number 955-94-1020", "955-94-1020"),
    ],
)
def test_itin_with_a_tax_cue_is_a_government_id(text: str, value: str) -> None:
    found = {(e.category, e.kind, text[e.start : e.end]) for e in scan(text).evidence}
    assert ("government_id", "itin", value) in found


def test_itin_shape_without_a_tax_cue_stays_an_invalid_ssn() -> None:
    result = scan("order ref 912-78-4521 shipped")
    assert not [e for e in result.evidence if e.category == "government_id"]
    result = scan("my SSN is 912-78-4521")  # the SSA never issues 9XX: a trap, not an ITIN
    assert not [e for e in result.evidence if e.kind == "itin"]
    assert result.signals["ssn_invalid"] == 1


@pytest.mark.parametrize(
    ("text", "kind", "span"),
    [
        ("he injects 14 units of Tresiba every morning", "dosage_regimen", "14 units of Tresiba"),
        ("take 1.5mg of Xanax when it starts", "dosage_regimen", "1.5mg of Xanax"),
        ("chemo round 4 of 6 done", "treatment_cycle", "round 4 of 6"),
        ("had my third ECT session today", "treatment_cycle", "third ECT session"),
    ],
)
def test_regimens_and_treatment_cycles_are_health_evidence(text: str, kind: str, span: str) -> None:
    found = {(e.category, e.kind, text[e.start : e.end]) for e in scan(text).evidence}
    assert ("health", kind, span) in found


@pytest.mark.parametrize(
    "text",
    [
        "drink 500 ml of water a day",
        "round 4 of 6 in the boxing match",
        "How many units of insulin in a pen?",
    ],
)
def test_amounts_and_rounds_without_a_drug_or_treatment_are_not_health(text: str) -> None:
    assert not {e.kind for e in scan(text).evidence} & {"dosage_regimen", "treatment_cycle"}


def test_misspelt_label_words_still_read_the_value() -> None:
    text = "my pin numbr is 4821"
    assert ("credential", "4821") in {(e.category, text[e.start : e.end]) for e in scan(text).evidence}
    text = "date of brith 14/03/1987"
    found = {(e.category, text[e.start : e.end]) for e in scan(text).evidence}
    assert ("date_of_birth", "14/03/1987") in found


@pytest.mark.parametrize(
    "prompt",
    [
        "My ITIN is 912-78-4521, is it still valid after three years unused?",
        "he injects 14 units of Tresiba every morning, is that normal?",
        "chemo round 4 of 6 done, feeling wiped out",
        "had my third ECT session this morning and my memory is foggy",
        "Write a message to my manager: calling in sick today, migraine since 5am",
        "the nephrologist says my kidney function is down to 38 percent",
        "my pin numbr is 4821, why does the ATM keep rejecting it",
    ],
)
def test_regimen_cycle_sick_leave_and_typo_disclosures_are_flagged(classifier, prompt: str) -> None:
    assert classifier.classify(prompt).sensitive, prompt


@pytest.mark.parametrize(
    "prompt",
    [
        "What is an ITIN and who can apply for one?",
        "How many units of insulin does a Lantus pen hold?",
        "How many rounds of chemo are typical for breast cancer?",
        "What is ECT used for in psychiatry?",
        "Write a company policy on calling in sick.",
        "What does a kidney function test measure?",
        "Is 1234 a bad PIN number to choose?",
    ],
)
def test_keyword_traps_for_the_new_cues_stay_public(classifier, prompt: str) -> None:
    assert not classifier.classify(prompt).sensitive, prompt


def test_snake_case_tokens_keep_their_offsets() -> None:
    text = "export DB_PASSWORD=Tr0ub4dor&3x and __init__"
    result = scan(text)
    assert result.tokens[:3] == ["export", "db", "password"]
    located = [text[s : s + len(t)].lower() for s, t in zip(result.token_starts, result.tokens, strict=True)]
    assert located == result.tokens
    assert ("credential", "Tr0ub4dor&3x") in {(e.category, text[e.start : e.end]) for e in result.evidence}


# --- recognisers added after a second, independently written probe set ---------------------


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(e.kind, text[e.start : e.end]) for e in scan(text).evidence if e.strong]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # card numbers typed with double spaces or dots, or run into the expiry's month
        ("found my dads old card 4929  7443  1696  0692 in a drawer", "card", "4929  7443  1696  0692"),
        ("discover card 6011.9459.2082.5569 keeps getting flagged", "card", "6011.9459.2082.5569"),
        ("charge it 6011944323383631 10/27 code 085", "card", "6011944323383631"),
        # an address inside a log line's key=value pair
        (
            "login success user=ewan.mcbride@glenview-ops.co.uk ip=86.142.77.19",
            "email",
            "ewan.mcbride@glenview-ops.co.uk",
        ),
        # a German mobile with the area code before a slash; an Indian mobile, five and five
        ("Rufen Sie mich zurück: 0176/44 28 193. Gruß, Petra", "phone", "0176/44 28 193"),
        ("Rohan: 98204 71536 save it this time", "phone", "98204 71536"),
        # passwords: quoted with spaces, with an '@' inside, in other languages
        (
            "gmail app password for smtp is 'qwhz mbtr opla ksve' and smtplib fails",
            "password",
            "qwhz mbtr opla ksve",
        ),
        (
            "router admin login is admin / Tp-Link@0419 , how do i change the dns",
            "login_pair",
            "Tp-Link@0419",
        ),
        ("login do routera: admin / Zielona!Brama93. jak zmienić nazwę", "login_pair", "Zielona!Brama93."),
        ("e-Devlet şifrem Ankara.1907 ama girişte hata", "password", "Ankara.1907"),
        ("Mijn pincode 8025 werkt ineens niet meer", "pin", "8025"),
        # a wallet's recovery phrase
        (
            "wrote my recovery phrase down: orbit tackle velvet census humble lunar pistol fringe "
            "attract sugar canyon wisdom. is it safe?",
            "seed_phrase",
            "orbit tackle velvet census humble lunar pistol fringe attract sugar canyon wisdom",
        ),
        # national IDs after labels in Irish, Italian, Spanish and French
        ("Hi, my PPS no is 8273619SA, I started with a new employer", "gov_id", "8273619SA"),
        ("il mio codice fiscale è BNCGLI90D52F205T, il commercialista dice", "gov_id", "BNCGLI90D52F205T"),
        ("mi NIE es Y-4827193-J, para el contrato", "gov_id", "Y-4827193-J"),
        ("numéro de sécu 1 85 03 75 112 048 03, la CPAM me demande", "gov_id", "1 85 03 75 112 048 03"),
        # serial numbers and dates of birth after labels in other languages
        ("numer seryjny mojej konsoli to S01E4593017B2C, zgubiłem paragon", "serial", "S01E4593017B2C"),
        ("Chassisnummer van mijn auto is WVWZZZAUZHW514290, de garage", "serial", "WVWZZZAUZHW514290"),
        ("Doğum tarihim 17 Mart 1995, adım Burak", "dob", "17 Mart 1995"),
        # numbers and addresses read out, as voice typing writes them
        (
            "the card number is four five five six, two seven three three, seven two nine nine, nine "
            "two two zero",
            "card_spoken",
            "four five five six, two seven three three, seven two nine nine, nine two two zero",
        ),
        (
            "my social is five two nine dash four four dash eight one six three",
            "ssn_spoken",
            "five two nine dash four four dash eight one six three",
        ),
        (
            "my landline is six one three, four four two, nine zero one seven",
            "phone_spoken",
            "six one three, four four two, nine zero one seven",
        ),
        (
            "my email is dan dot whitlock at outlook dot com",
            "email_spoken",
            "dan dot whitlock at outlook dot com",
        ),
        # a lab panel: two results with their units
        ("TSH 6.8 mIU/L (H) Free T4 0.7 ng/dL (L), what does it mean", "lab_result", "6.8 mIU/L"),
    ],
)
def test_more_disclosure_forms_are_validated_evidence(text: str, kind: str, value: str) -> None:
    assert (kind, value) in _kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        # a documented test card with its made-up expiry and CVC
        "stripe test card 4242 4242 4242 4242 keeps failing in test mode with exp 12/34 cvc 123",
        # Ofcom's drama numbers, said to be for a film
        "ofcom drama numbers like 07700 900123, are they safe to put on a prop phone in my short film",
        # public places' addresses
        "Mayo Clinic is at 200 First St SW in Rochester MN, do they take walk-ins?",
        "the white house address is 1600 Pennsylvania Ave NW right, how do i send a letter",
        # a reference number in the Indian mobile's shape; counting aloud
        "order 71234 55555 shipped yesterday",
        "one two three four five six seven eight nine ten, count along with me",
        # reference ranges, not anyone's results
        "normal fasting glucose is 70-99 mg/dL and below 100 mg/dL is fine",
        # a resource name, not a password
        "how do I pass the master password to aws_db_instance without hardcoding it?",
        # prose after "recovery phrase"
        "my recovery phrase is something i wrote on a piece of paper and keep in the safe at home",
    ],
)
def test_look_alikes_of_the_new_forms_stay_without_validated_evidence(text: str) -> None:
    assert _kinds(text) == []


def test_a_drama_number_without_a_word_of_fiction_is_still_a_phone() -> None:
    assert ("phone_intl", "+44 7700 900413") in _kinds("My work line is +44 7700 900413, call me")


def test_an_address_of_a_public_place_still_counts_with_a_person_in_the_sentence() -> None:
    assert ("street_address", "12 Oak Street") in _kinds("The clinic sent a letter. I live at 12 Oak Street")


@pytest.mark.parametrize(
    "prompt",
    [
        "cibil score 682, home loan of 45 lakh rejected by sbi. which bank would approve?",
        "monthly stuff: rent 1450, car payment 389, cc minimum 120, income 4100 after tax. "
        "turn this into a budget spreadsheet plz",
        "wrote my recovery phrase down: orbit tackle velvet census humble lunar pistol fringe "
        "attract sugar canyon wisdom. is it safe to keep a copy in google keep too?",
        "ok so my number is oh seven nine one one two eight four six six three, put it in the form",
    ],
)
def test_terse_spoken_and_listed_disclosures_are_flagged(classifier, prompt: str) -> None:
    assert classifier.classify(prompt).sensitive


@pytest.mark.parametrize(
    "prompt",
    [
        "credit score ranges from 300 to 850, what is considered good?",
        "stripe test card 4242 4242 4242 4242 keeps failing in test mode with exp 12/34 cvc 123, "
        "what am i missing",
    ],
)
def test_sentences_about_values_stay_public(classifier, prompt: str) -> None:
    assert not classifier.classify(prompt).sensitive


def test_a_condition_that_opens_a_sentence_with_its_duration_is_about_the_writer() -> None:
    text = "hiv+ since 2019, undetectable for 3 years now. do i have to tell my dentist?"
    kinds = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]
    assert ("health_term_anchored", "hiv") in kinds
    general = "Diabetes has been treated with insulin since the 1920s."
    assert [e for e in scan(general).evidence if e.category == "health"] == []


def test_an_opening_label_and_value_counts_only_as_a_terse_statement() -> None:
    def financial(text: str) -> list[str]:
        return [text[e.start : e.end] for e in scan(text).evidence if e.category == "financial"]

    assert financial("cibil score 682, home loan rejected by sbi.") == ["682"]
    assert financial("Credit score 300 is the lowest possible, right?") == []
    assert financial("credit score ranges from 300 to 850") == []


def test_a_full_name_with_an_age_is_a_person_even_with_an_unlisted_first_name() -> None:
    text = "Background: Leonor Vasquez-Trujillo, 41, charge nurse on nights at St. Brendan's ICU"
    names = [text[e.start : e.end] for e in scan(text).evidence if e.category == "person_name"]
    assert names == ["Leonor Vasquez-Trujillo"]
    assert [e for e in scan("Chapter Three, 12, a new start").evidence if e.category == "person_name"] == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Er soll mich bitte unter 0151 2378 4406 zurückrufen", "phone", "0151 2378 4406"),
        (
            "the repair shop needs my Xbox Series X serial 0386 2251 7734 08 for the RMA",
            "serial",
            "0386 2251 7734 08",
        ),
        ("The bank form wants my SIN, it's 527 193 049. Is that normal?", "gov_id", "527 193 049"),
    ],
)
def test_values_a_little_away_from_their_labels_are_read(text: str, kind: str, value: str) -> None:
    assert (kind, value) in _kinds(text)


def test_a_routing_number_is_weak_evidence_and_a_banks_own_is_none() -> None:
    """A routing number names a bank, not its customer: it counts beside the account, not alone."""
    text = "the form asks for routing and account. mine are 122000661 and 4839201756"
    found = {(e.kind, text[e.start : e.end], e.strong) for e in scan(text).evidence}
    assert ("routing", "122000661", False) in found
    public = scan("JPMorgan Chase's routing number for New York ACH is 021000021. Same for wires?")
    assert not public.evidence and not public.signals.get("routing")


def test_a_bound_in_a_query_is_no_date_of_birth_and_a_tax_return_is_no_code() -> None:
    query = "SQL to select customers whose date_of_birth is before 1990-01-01 from the customers table"
    assert _kinds(query) == []
    itin = "for my tax return the preparer asked for my ITIN, it's 927-74-1058."
    assert scan(itin).signals["code_cue"] == 0
    found = [(e.category, itin[e.start : e.end]) for e in scan(itin).evidence if e.strong]
    assert ("government_id", "927-74-1058") in found


def test_the_word_password_alone_is_a_mention_not_a_placeholder_value() -> None:
    # A stand-in value after the label is a trap the model learns from; the bare word
    # ("I forgot my password") says nothing either way and must not pull a real ID down.
    assert scan("password: changeme").signals["secret_placeholder"] == 1
    mention = scan("I forgot my password, my TC kimlik no: 27810784906")
    assert mention.signals["secret_placeholder"] == 0
    assert mention.signals["password_mention"] == 1


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("ssn 53622 8146 for the W-9, can you check I filled the rest right", "ssn", "53622 8146"),
        ("itin is 912-78-4431, does that go where the social security number box is?", "itin", "912-78-4431"),
        ("insurance quote needs both of us: me 6/30/84, husband 2/11/82, both non smokers", "dob", "6/30/84"),
        ("I'm a 19 june 1978 baby, what's my chinese zodiac", "dob", "19 june 1978"),
        ("birthday's 31 oct 1995, which is why everything I own is halloween themed", "dob", "31 oct 1995"),
        (
            "wifi at the lake house is Birchwood_Guest!22, write a cute sign for the guest room",
            "password",
            "Birchwood_Guest!22",
        ),
    ],
)
def test_typed_and_unlabelled_forms_of_known_identifiers_are_read(text: str, kind: str, value: str) -> None:
    assert (kind, value) in _kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "Taylor Swift's birthday is December 13, 1989, right?",
        "dinner with my husband 6/30/2025 at 7, book a table",
        "my wifi is Xfinity-5G and it keeps dropping",
        "00:00:5E:00:53:01 is in the documentation MAC range, right?",
        "IMEI 490154203237518 shows up in a ton of tutorials, is it an actual device?",
        "stripe docs say routing 110000000 for testing, why does plaid reject it",
        "fill the template with dummy values: Jane Q. Public, 1 Example Way",
    ],
)
def test_public_and_documented_values_stay_without_validated_evidence(text: str) -> None:
    assert _kinds(text) == []


def test_the_numeral_after_a_condition_is_not_the_writer() -> None:
    assert scan("how is bipolar II different from bipolar I").signals["first_person"] == 0
    assert scan("I have bipolar I and take lithium").signals["first_person"] == 1


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("I have diabetes. How do I ask for breaks at work?", "diabetes"),
        ("I have type 2 diabetes", "type 2 diabetes"),
        ("I'm autistic and deaf in my left ear", "autistic"),
        ("I was diagnosed with ADHD last year, how do I tell my boss?", "ADHD"),
        ("I'm on sertraline 50mg, can I drink?", "sertraline"),
        ("I think I have covid", "covid"),
        ("my wife has epilepsy. What should I tell her employer?", "epilepsy"),
        ("my son is autistic", "autistic"),
        ("I was inpatient for bipolar disorder last spring", "bipolar"),
    ],
)
def test_a_stated_condition_is_validated_health_evidence(text: str, term: str) -> None:
    assert ("health_self_statement", term) in _kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "Do I have diabetes if my fasting sugar is 99?",
        "If I have covid, should I stay home?",
        "I have a question about diabetes",
        "I don't have asthma",
        "does my son have adhd?",
        "what if my mom has dementia",
    ],
)
def test_asked_supposed_or_denied_conditions_are_no_statement(text: str) -> None:
    assert [k for k in _kinds(text) if k[0] == "health_self_statement"] == []


@pytest.mark.parametrize(
    "prompt",
    [
        "I have diabetes. How do I ask for breaks at work?",
        "I was diagnosed with ADHD last year, how do I tell my boss?",
        "I have asthma and want to start running, tips?",
    ],
)
def test_a_disclosure_followed_by_an_ordinary_question_is_flagged(classifier, prompt: str) -> None:
    assert classifier.classify(prompt).sensitive


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("34 weeks and measuring small, OB wants weekly growth scans now", "34 weeks"),
        ("I'm 11 weeks and haven't told work yet", "11 weeks"),
        ("37 weeks tomorrow and the baby's still breech", "37 weeks"),
    ],
)
def test_how_far_along_a_pregnancy_is_health_evidence(text: str, value: str) -> None:
    assert ("health_self_statement", value) in _kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm 3 weeks into my new job",
        "6 weeks until the wedding and the venue cancelled",
        "how many weeks pregnant is safe to fly?",
        "The project takes 12 weeks. The baby shower is next month.",
    ],
)
def test_other_counts_of_weeks_are_not_a_pregnancy(text: str) -> None:
    assert _kinds(text) == []


def _all_kinds(text: str) -> list[tuple[str, str]]:
    return [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # a device label whose value comes later in the sentence, after "it's"
        (
            "ISP engineer wants the serial off my router, it's ZTEEQJQ1A0462718. can they see my browsing?",
            "serial",
            "ZTEEQJQ1A0462718",
        ),
        (
            "support asked for my device's advertising ID so they can delete my data, it's "
            "70059ca9-6dd6-468e-9b42-3e2b6b0b3307, safe to send?",
            "serial",
            "70059ca9-6dd6-468e-9b42-3e2b6b0b3307",
        ),
        ("my bike was stolen: Trek FX 2, black, frame number WTU183C4427K.", "serial", "WTU183C4427K"),
        # an Indian PAN (a person's: fourth letter P)
        ("Draft an email to my CA: PAN BKTPS4721L, need the ITR filed", "gov_id", "BKTPS4721L"),
        # a date of birth written out in words
        (
            "they want DOB as DD MM YYYY, mine's the seventeenth of january nineteen eighty-three",
            "dob",
            "the seventeenth of january nineteen eighty-three",
        ),
        (
            "my birthday is march the third, two thousand and one",
            "dob",
            "march the third, two thousand and one",
        ),
        # coordinates that locate the writer's flat
        (
            "drinks at mine saturday, location pin is 51.52037, -0.09865 (grey block)",
            "gps",
            "51.52037, -0.09865",
        ),
        # a street name after its type in French or Portuguese, with a particle inside
        ("I'm at Rue des Tanneurs 47B, 1000 Bruxelles", "street_address", "Rue des Tanneurs 47B"),
        ("endereço Rua Domingos de Morais 2187, apto 64", "street_address", "Rua Domingos de Morais 2187"),
        # a condition stated about someone the writer knows, by pronoun
        (
            "A coworker, Dana, told me in confidence she's HIV positive. How can I help?",
            "health_self_statement",
            "HIV",
        ),
    ],
)
def test_later_values_words_dates_pans_and_pronoun_statements_are_validated_evidence(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in [(k, v.strip()) for k, v in _kinds(text)]


@pytest.mark.parametrize(
    "text",
    [
        # a public landmark's coordinates
        "The Eiffel Tower is at 48.8584, 2.2945.",
        # the MAC address documentation pages use
        "The docs show 00:1B:44:11:3A:B7 as a sample MAC address; is that format right?",
        # the PAN format's worked example
        "PAN format is ABCPE1234F, what does the fourth letter mean",
        # a condition asked about, not stated
        "my manager asked if she's diabetic, what do i say",
        # "serial number" with prose after it
        "where is the serial number on a macbook? its usually on the bottom",
    ],
)
def test_public_coordinates_documented_values_and_asked_conditions_stay_without_evidence(text: str) -> None:
    assert _kinds(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Prep notes for my 1:1 with Juno: she's on 96k base + 8% bonus", "money_anchored", "96k"),
        ("he makes about $140,000 at the plant", "money_anchored", "$140,000"),
        (
            "write a complaint for me: Owen Pratchett, member #88123 at Iron Forge Gym",
            "name_affiliation",
            "Owen Pratchett",
        ),
        (
            "Email to parents: Jaylen Okafor, 10th grade, homeroom 214, has an IEP",
            "name_affiliation",
            "Jaylen Okafor",
        ),
        (
            "the bloke blocking my drive is Derek Shawcross from number 14, teaches PE",
            "name_affiliation",
            "Derek Shawcross",
        ),
    ],
)
def test_someones_pay_and_a_name_tied_to_a_workplace_are_evidence(text: str, kind: str, value: str) -> None:
    assert (kind, value) in _all_kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "if someone makes 96k what is the tax in Ohio",
        "is 96k base good for a nurse?",
        "What did Barack Obama study at Columbia, was he a good student?",
    ],
)
def test_pay_questions_and_public_figures_are_no_pay_or_affiliation(text: str) -> None:
    assert [k for k, _ in _all_kinds(text) if k in ("money_anchored", "name_affiliation")] == []


def test_a_salary_review_with_no_figure_does_not_open_a_statement_about_the_writer() -> None:
    assert scan("Salary review is next week. How do I ask for more?").signals["implied_self"] == 0
    assert scan("Salary is 85k and rent is 2k, can I afford a car?").signals["implied_self"] == 1


@pytest.mark.parametrize(
    "prompt",
    [
        "Prep notes for tomorrow's 1:1 with Juno — she's on 96k base + 8% bonus and has a competing "
        "offer at 115k. What's a reasonable counter?",
        "A coworker, Dana, told me in confidence she's HIV positive and is worried about the new "
        "health screening at work. How can I support her without outing her?",
        "write a complaint for me: Owen Pratchett, member #88123 at Iron Forge Gym Dayton, they billed "
        "me after I cancelled",
        "Draft an email to my CA: PAN BKTPS4721L, need the ITR filed before the 31st",
    ],
)
def test_third_party_pay_health_affiliation_and_pan_prompts_are_flagged(classifier, prompt: str) -> None:
    assert classifier.classify(prompt).sensitive


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # a date of birth in Spanish after "nací"
        ("Nací el 8 de julio de 1994 en Valencia, ¿qué signo soy?", "dob", "8 de julio de 1994"),
        # a German tax ID with whose it is between label and value
        ("Steuer-ID meines Mannes: 47 036 892 815. Muss die in die Anlage N?", "gov_id", "47 036 892 815"),
        # a frame number in German, a watch's unit ID
        ("Mein Fahrrad wurde geklaut: Cube, Rahmennummer WBK8820134F, schwarz", "serial", "WBK8820134F"),
        ("my garmin won't pair anymore, unit ID 3394817622, support asked me", "serial", "3394817622"),
        # a relative's condition stated in Spanish or French
        ("Mi pareja toma sertralina 100mg por depresión", "health_self_statement", "sertralina"),
        ("Mon père est sous dialyse trois fois par semaine", "health_self_statement", "dialyse"),
    ],
)
def test_dates_ids_serials_and_relatives_conditions_in_other_languages_are_evidence(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in _kinds(text)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (
            "write a reference for Bethany Crowe? she worked under me at Hollis & Marsh",
            "name_affiliation",
            "Bethany Crowe",
        ),
        (
            "eine Absage an Jonas Reimann, 34, Bewerber für die Stelle als Lagerist",
            "name_pair",
            "Jonas Reimann",
        ),
        ("Mi compañera Valeria Ortiz, la de contabilidad, tiene 29 años", "name_relation", "Valeria Ortiz"),
        ("un mot pour Inès Morel, la nouvelle institutrice de CM2", "name_affiliation", "Inès Morel"),
        ("mera naam Ankit Sharma hai, resignation letter likh do", "name_intro", "Ankit Sharma"),
    ],
)
def test_names_tied_to_work_age_or_an_introduction_in_other_languages_are_evidence(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in _all_kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        # a Kubernetes manifest's stand-in value
        "kind: Secret\ndata:\n  password: <base64-encoded-password>\ndo I need stringData?",
        # area code 555 does not exist; 555-01XX is reserved for fiction
        "Phone: +1 (555) 010-0199 — is that range reserved for fiction?",
        "call +1 212 555 0143 in the screenplay",
        # a password inside a novel's plot
        "In my novel the detective's password is 'Ophelia1899' — too obvious?",
        # a landmark's address after its name
        "The Eiffel Tower is at Champ de Mars, 5 Av. Anatole France — how early should we go?",
    ],
)
def test_stand_ins_fiction_numbers_plots_and_landmark_addresses_stay_without_evidence(text: str) -> None:
    assert [k for k in _kinds(text) if k[0] != "postcode"] == []


def test_a_real_password_near_the_word_game_is_still_a_password() -> None:
    assert ("password", "Ophelia1899") in _kinds("my steam password is Ophelia1899 and the game wont load")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("change my debit pin, current one is 7310 and i think my ex knows it", "pin", "7310"),
        ("Mein WLAN-Passwort ist FritzBox7590!Kaktus und meine Nachbarn", "password", "FritzBox7590!Kaktus"),
        ("Steuer-ID von meinem Mann ist 47 291 836 541, wo trage ich die ein?", "gov_id", "47 291 836 541"),
        ("huisarts vraagt het BSN van mijn dochter (277382592), mag dat per mail?", "gov_id", "277382592"),
        ("23 wks along and my manager keeps putting me on closing shifts", "health_self_statement", "23 wks"),
        ("geb. 03.12.1993 – gehört das Geburtsdatum in den Lebenslauf?", "dob", "03.12.1993"),
        # a house is a home, not a public place
        (
            "I've lived here 12 years, the blue house at 501 Elm St with the red door",
            "street_address",
            "501 Elm St",
        ),
    ],
)
def test_pins_later_in_the_sentence_german_labels_and_short_forms_are_evidence(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in _kinds(text)


def test_a_credit_score_change_counts_but_the_scale_does_not() -> None:
    assert (
        scan("credit score went from 741 to 688 after one missed payment").signals["credit_score_number"] == 1
    )
    assert scan("credit score ranges from 300 to 850, what is good?").signals["credit_score_number"] == 0


def test_german_im_is_no_introduction_and_a_public_place_postcode_is_no_address() -> None:
    assert (
        _all_kinds("Wie sicher ist ein Passwortmanager wie Bitwarden im Vergleich zu Notizen im Handy?") == []
    )
    assert ("postcode", "CA 95014") not in _all_kinds("Apple's HQ is One Apple Park Way, Cupertino, CA 95014")
    assert ("postcode", "CA 95014") in _all_kinds("I live at 12 Oak Lane, Cupertino, CA 95014")


def test_stripe_authentication_test_cards_are_traps() -> None:
    text = "Use 4000 0027 6000 3184 in Stripe test mode to trigger the 3D Secure flow"
    assert _kinds(text) == []
    assert scan(text).signals["card_test"] == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("28030 Edeby 55\n Apt. 297\n TYSTBERGA\n Sweden 99178", "Edeby 55"),
        ("Billing address: Noelle Martinsson\n    1593 Pagari 18 Suite 932\n   Põlluküla", "Pagari 18"),
    ],
)
def test_a_street_name_and_number_before_an_apartment_is_a_street_address(text: str, value: str) -> None:
    assert ("street_address", value) in _kinds(text)


def test_a_building_or_tower_before_a_suite_is_a_site_not_a_street() -> None:
    assert _kinds("The meeting is in Building 5 Suite 200") == []
    assert _kinds("Our office: Tower 2 Unit 9") == []


def test_words_of_public_view_are_counted() -> None:
    text = "Selena Gomez has talked publicly about her lupus in an interview"
    assert scan(text).signals["public_context"] == 2
    assert scan("my mum has lupus").signals["public_context"] == 0


def test_adding_a_template_leaves_every_other_template_on_its_side_of_the_split() -> None:
    from variants.sensitivity.synth import Example, template_split

    def examples(ids: list[str]) -> list[Example]:
        return [Example(f"text {t}", 0, (), t, "neg:x") for t in ids]

    ids = [f"neg:x:{k}" for k in range(200)]
    _, test_before = template_split(examples(ids), seed=0)
    _, test_after = template_split(examples([*ids, "neg:x:new"]), seed=0)
    assert {ids[i] for i in test_before} == {ids[i] for i in test_after if i < len(ids)}
    assert 20 <= len(test_before) <= 60  # about a fifth


def test_evidence_weights_are_never_negative(classifier) -> None:
    from variants.sensitivity import features as F

    bounded = [w for w, bound in zip(classifier.dense_weights, F.nonnegative_dense(), strict=True) if bound]
    assert len(bounded) > 100
    assert min(bounded) >= 0.0
    # the free ones still learn signs: an invalid SSN or a test card argues against a disclosure
    weights = dict(zip(F.DENSE_NAMES, classifier.dense_weights, strict=True))
    assert weights["sig:card_test"] < 0 or weights["sig:ssn_invalid"] < 0


def test_a_form_with_only_a_name_and_a_date_of_birth_is_sensitive(classifier) -> None:
    result = classifier.classify(
        "Please fill in: Surname: Varga | First name: Ildikó | DOB: 1994-11-08 | Nationality: HU."
    )
    assert result.sensitive
    assert "date_of_birth" in result.categories


def test_a_canadian_sin_needs_its_name_in_capitals_and_luhn() -> None:
    assert ("gov_id", "462 198 375") in _kinds("462 198 375 - will the CRA accept the T4 with this SIN?")
    assert _kinds("llámame sin falta al 462 198 375") == []
    assert _kinds("462 198 376 - will the CRA accept this SIN?") == []


def test_a_street_named_after_a_first_name_is_no_person_and_a_job_advert_no_salary() -> None:
    museum = scan("The British Museum is on Great Russell Street, London")
    assert museum.evidence == [] and museum.signals["address_public_place"] == 1
    assert scan("Salary: competitive. Benefits: dental, vision.").signals["implied_self"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "Add our contact block to the website footer: Brightwell Logistics Ltd. Tel 0113 496 0200.",
        "Rewrite our shop sign: Mon-Fri 9-6, closed Sundays, call 020 7946 0123 for bookings.",
        "Write a Google Business description for our café at 47 Market Street, Hebden Bridge",
        "Write a cover email to the procurement team at contracts@northshire-council.gov.uk",
        "Chapter 4 Unit 2 homework is due Friday",
    ],
)
def test_an_organisations_own_phone_address_and_mailbox_identify_nobody(text: str) -> None:
    assert _kinds(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # a person named, a personal word by the number, or the writer speaking of themselves
        ("our company office manager Jane, her mobile is 07912 345678", "phone", "07912 345678"),
        ("I run a small bakery, call me on 07912 345678", "phone", "07912 345678"),
        ("I live above our café at 47 Market Street, Hebden Bridge", "street_address", "47 Market Street"),
        # a date of birth later in the sentence, after "it's" or "mine's"
        ("HR wants my date of birth for the pension form, it's 1979-11-02, format?", "dob", "1979-11-02"),
        (
            "visa form wants DOB as mm/dd/yyyy, mine's 22 august 1986, which way round",
            "dob",
            "22 august 1986",
        ),
        # apartments after a quoted or lower-case street
        ("> Alma Jensen\n> 91215 Harjukuja 54\n> Suite 318\n> SEINÄJOKI", "street_address", "Harjukuja 54"),
        ("update my address: 2613 avenida praia 1 suite 463, mohács", "street_address", "avenida praia 1"),
    ],
)
def test_personal_contacts_beside_organisations_and_later_birth_dates_stay_evidence(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in _kinds(text)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("I wrote my NI number as QM482107C on the job form", "gov_id", "QM482107C"),
        (
            "my florida license D412-778-39-902-1 got suspended for unpaid tolls",
            "gov_id",
            "D412-778-39-902-1",
        ),
        ("renewing the licence, current one's D412-7783-9015 (illinois)", "gov_id", "D412-7783-9015"),
        (
            "Die Seriennummer meiner Fritzbox ist 4792.188.33.419207, der Support",
            "serial",
            "4792.188.33.419207",
        ),
        ("Mein Router-Passwort ist 'Kaffeetasse#42Lila' – sicher genug?", "password", "Kaffeetasse#42Lila"),
        (
            "My HIV test came back positive yesterday.",
            "health_self_statement",
            "My HIV test came back positive",
        ),
        (
            "Mon médecin m'a diagnostiqué une hypothyroïdie et je prends du Levothyrox",
            "health_self_statement",
            "hypothyroïdie",
        ),
    ],
)
def test_licences_results_and_labels_found_in_probe_k_are_evidence(text: str, kind: str, value: str) -> None:
    assert (kind, value) in _kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "MIT license 2.0 for the repo, and the license key ABCD-1234-EFGH is in the vault",
        "license 20231105 for the product",
        "does a positive covid test mean my flatmate has it too?",
        "Beispieladresse für ein Formular: Max Mustermann, Musterstraße 1, 12345 Musterstadt",
    ],
)
def test_software_licences_general_results_and_form_stand_ins_are_no_evidence(text: str) -> None:
    assert [k for k in _kinds(text) if k[0] != "secret_assignment"] == []


def test_the_us_is_a_country_and_a_401k_is_a_plan() -> None:
    result = scan("average 401k balance by age 50 in the US")
    assert result.signals["first_person"] == 0
    assert [e.kind for e in result.evidence if e.kind == "money_anchored"] == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (
            "We're at H.No 14-2-117, Lakshmi Nagar, Kothapet, Hyderabad 500035",
            "street_after_cue",
            "14-2-117, Lakshmi Nagar",
        ),
        ("Ich bin am 19.04.1985 geboren. Ab wann kann ich in Rente?", "dob", "19.04.1985"),
        ("My German tax ID (Steuer-ID) is 47 036 892 815 — where does it go?", "gov_id", "47 036 892 815"),
        (
            "Mon numéro de sécu c'est le 2 88 07 75 114 063 86, je dois le donner",
            "gov_id",
            "2 88 07 75 114 063 86",
        ),
        (
            "Das Admin-Passwort von meinem Router ist Kellerfenster!73 – wie ändere ich",
            "password",
            "Kellerfenster!73",
        ),
    ],
)
def test_indian_house_numbers_german_birth_order_and_bracketed_labels_are_evidence(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in _kinds(text)


def test_a_request_id_is_a_uuid_not_a_secret_and_a_landmark_question_locates_nobody() -> None:
    result = scan("request_id=7f3c2a91-5be0-4d18-9c6e-2a41f0d83b57 keeps appearing in our 502 errors")
    assert result.signals["uuid"] == 1 and result.signals["high_entropy"] == 0
    assert _kinds("what landmark is at 48.8584, 2.2945?") == []
    assert _kinds("The mockup says 'Firstname Lastname, 123 Any Street, Anytown' in the card") == []
    assert _kinds("vetrina del nostro negozio: aperti 9–19, telefono 02 8736 4410") == []


def test_indian_salary_words_and_a_credit_score_band_are_read() -> None:
    kinds = _all_kinds("My CTC is 18.5 LPA and in-hand is about 1.22 lakh a month")
    assert ("money_anchored", "18.5 LPA") in kinds
    assert ("credit_score_value", "640") in _all_kinds("my credit score is in the 640s")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Experian has me at 701 and Equifax at 688. Why?", "credit_score_value", "701"),
        ("the officer wrote my florida DL number down as W412-718-90-356-0", "gov_id", "W412-718-90-356-0"),
        ("Old board serial was MB-7YH2-40KR-9921, what now?", "serial", "MB-7YH2-40KR-9921"),
        ("je gagne 3 400 € net par mois", "money_anchored", "3 400 €"),
        ("I have a severe peanut allergy (carry two EpiPens)", "health_self_statement", "peanut allergy"),
    ],
)
def test_bureaus_written_down_ids_serials_euro_amounts_and_allergies_are_evidence(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in _all_kinds(text)


def test_part_numbers_vat_numbers_asked_coordinates_and_medicine_questions_are_not_disclosures() -> None:
    assert _kinds("I need part no. 241-88-7065 (crisper drawer) for my fridge") == []
    assert _kinds("Our supplier's invoice shows VAT number GB 294 7731 08. Check it?") == []
    assert _kinds("What's at 48.8606, 2.3376? Is that the Louvre pyramid?") == []
    assert scan("Can you take ibuprofen and paracetamol together?").signals["generic_opener"] == 1
    assert scan("can I take ibuprofen with my sertraline?").signals["generic_opener"] == 0


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("the bank texted me 604918 but the site says the code is wrong", "otp", "604918"),
        ("I keep typing 8352 which is definitely my card PIN, is the chip broken?", "pin", "8352"),
        ("my github recovery codes: 3c9e1-77ab2 0f4d8-b61c5 92e7a-4d0f3", "backup_code", "3c9e1-77ab2"),
        ("keep these backup codes safe\n2841 9930\n6617 0425\n", "backup_code", "2841 9930"),
        ("we still owe 212,000 on the mortgage, should we overpay?", "debt_statement", "212,000"),
        ("Opening balance: 3,118.40\nClosing balance: 2,906.15", "statement_balance", "3,118.40"),
        ("Tomasz Wrona is off until June, recovering from a hip replacement", "health_recovery", None),
        ("she has been on lithium since the spring and feels flat", "medication_statement", "lithium"),
        ("I've been self-medicating with leftover diazepam for a month", "medication_statement", "diazepam"),
        ("we had our 20-week scan on friday and told my parents", "pregnancy_statement", None),
        ("身份证号 440306198512011233，请帮我填表", "gov_id", "440306198512011233"),
        ("pgpass line: db1.internal:5432:*:ops_ro:Tr4il!Map#9", "password", "Tr4il!Map#9"),
        ("docker login ghcr.io -u ci-bot -p 'Vn7#qL2!xR9w' works but warns", "cli_password", "Vn7#qL2!xR9w"),
        (
            "curl -u release-bot:e41f0c92ab77d3a5c8 https://ci.internal/job/x",
            "cli_password",
            "e41f0c92ab77d3a5c8",
        ),
        ("holder,card\nMei Tanaka,4539 1488 0343 6467,19.99,2024-05-01", "card", "4539 1488 0343 6467"),
        ("client = Client('AC5f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c', token)", "api_key", None),
        ("the verification code is four nine one, two zero seven", "otp_spoken", None),
    ],
)
def test_statements_without_a_label_before_their_value_are_read(
    text: str, kind: str, value: str | None
) -> None:
    found = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence if e.strong]
    assert any(k == kind and (value is None or v == value) for k, v in found), found


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("SMS : « Votre code de confirmation est 739204 », je le donne ?", "otp", "739204"),
        ("[18.02.24, 20:11] Heinz: Die PIN für die EC-Karte ist 8352", "pin", "8352"),
        (
            "the scanner read:\nP<IRLOCONNELL<<SIOBHAN<MAIRE<<<<<<<<<<<<<<<<\n"
            "PX44192837IRL8903125F3006148<<<<<<<<<<<<<<04",
            "gov_id",
            None,
        ),
        ("Przelew, numer konta 86 1020 5558 1111 1841 5236 9874, tytuł: czynsz", "iban", None),
        ("https://book.example-vet.pl/confirm?name=Ann&tel=%2B48607339120&visit=2024-04-12", "phone", None),
        (
            "rate limit? https://api.weather.io/data?q=Leeds&appid=8c3f1e9a7b2d4c6e0f5a9b8d7c6e5f41",
            "api_key",
            None,
        ),
        (
            "Hi Tomás, your chlamydia test from 02/03 came back positive, call us",
            "health_self_statement",
            None,
        ),
        ("Salarié : Karim Benali\nSalaire de base : 2 850,00 €", "money_anchored", "2 850,00"),
        (
            "is this a valid seed? I wrote it down:\nlegal winner thank year wave sausage worth useful "
            "legal winner thank yellow",
            "seed_phrase",
            None,
        ),
    ],
)
def test_values_in_other_shapes_and_languages_are_read(text: str, kind: str, value: str | None) -> None:
    found = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]
    assert any(k == kind and (value is None or v == value) for k, v in found), found


def test_a_price_or_a_statistic_is_no_ones_money() -> None:
    assert scan("The iPhone 16 Pro starts at $999. Is it worth it?").signals["money"] == 0
    assert scan("we sell sourdough at $8.50 a loaf").signals["money"] == 0
    assert scan("The average FICO score in the US is around 715").signals["credit_score_number"] == 0
    assert scan("my take home went from $3,100 to $3,400 a month").signals["money"] >= 1


# Look-alikes that identify nobody, gathered from the probes' traps: documented examples,
# public and organisations' values, fiction, products, statistics and templates.
@pytest.mark.parametrize(
    "text",
    [
        "decode the jwt.io example: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "convert epoch 1712345678 to ISO 8601",
        "SELECT * FROM accounts WHERE credit_score < 580 AND balance > 5000",
        "stringData:\n  password: CHANGE_ME\n",
        "In my thriller, Inspector Hana Kovacs's password is 'Blackbird88'. Too easy?",
        "distance from 48.8584, 2.2945 (Eiffel Tower) to the Louvre?",
        "Our Berlin office is at Friedrichstraße 68, 10117 Berlin: write visitor directions",
        "footer: Northwind Ltd, 14 Harbour Road, Leeds LS1 4AB, main line 0113 496 0000",
        "team salary distribution: median 128k, p25 110k, p75 149k, n=46",
        "Q1 at the clinic: 41% hypertension, 23% type 2 diabetes across 1,284 patients",
        "TIN: XX-XXX4417 on the W-9, which box for a single-member LLC?",
        "Dear [Candidate Name], your salary will be [Amount], starting [Start Date].",
        "JPMorgan Chase's routing number for ACH is 021000021, same for wires?",
        "Compute the distance between the Eiffel Tower (48.8584, 2.2945) and the Colosseum",
        "Mount Everest summit 27.9881° N, 86.9250° E, 8,848.86 m. Convert to DMS.",
        "BEGIN:VEVENT\nORGANIZER:mailto:eng-team@northwind.io\nEND:VEVENT",
        "UPS says exception for 1Z 999 AA1 01 2345 6784, what does it mean?",
        "Apple FY2023: revenue $383.3B, net income $97.0B",
        "USDT on Ethereum is 0xdAC17F958D2ee523a2206206994597C13D831ec7. How do I read totalSupply?",
        "Rijksmuseum, Museumstraat 1, 1071 XX Amsterdam. Openingstijden?",
        "ICE 597 München Hbf 14:28, Wagen 9, Platz 45 reserviert",
        "NPC Captain Mira Vance, born 12.03.2311 on Europa Station: suggest a backstory",
        "Powerball winning numbers 2024-03-02: 20 26 32 38 58, PB 3",
        "Zalando SE, Valeska-Gert-Straße 5, 10243 Berlin, service@zalando.de",
        "Deutsches Rotes Kreuz e.V., IBAN DE63 3702 0500 0005 0233 07, BIC BFSWDE33XXX",
        "SKU,EAN\nTSH-BLK-M,4006381333931\nMUG-WHT,5901234123457\ncheck the EAN digits",
        "Pedido nº 405-7781123-662 enviado, nº seguimiento 3230001284471",
        "Call Vodafone UK customer services on 191 or 03333 040 191 from any other phone",
        "Auftragsnummer 4829 1177 0035. Kann ich einen früheren Zug nehmen?",
        "In the heist film, the vault code is 7-7-3-1: write the scene",
        "In my sci-fi story, android KX-449 has serial 00-AB-77 on its neck",
        "What does the JWT header eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 decode to?",
        "Is sk_test_4eC39HqLyjWDarjtT1zdp7dc from the Stripe docs safe in our README?",
        "Exemple d'IBAN fictif dans la doc de ma banque : FR76 3000 6000 0112 3456 7890 189",
        "IKEA KALLAX article number 702.758.14: what are the dimensions?",
        "In Breaking Bad Walt's house is 308 Negra Arroyo Lane, Albuquerque",
        "Write a mystery story where Detective Ana Kovač finds the password 'Moonlight77'",
        "is gate 214 near security? boarding closes at 0815",
    ],
)
def test_look_alikes_that_identify_nobody_give_no_evidence(text: str) -> None:
    assert [(e.kind, text[e.start : e.end]) for e in scan(text).evidence if e.strong] == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("the code they sent is 551 902 but it says invalid", "otp"),
        ("verification code: 7 3 0 - 1 8 8, type it in for me", "otp"),
        ("我的手机IMEI是357114089413569，昨天丢了", "imei"),
        ("UDID for the ad-hoc build: 00008110-001A2C3E0E91801E", "serial"),
        ("私のパスワードは sakura_0415 です。", "password"),
        ("claimant Rosa Martínez underwent ACL reconstruction on 4 Feb", "health_recovery"),
        ("2 lines on the covid test this morning and i fly tmrw", "health_self_statement"),
        ("मेरा आधार नंबर 2341 2341 2346 है", "gov_id"),
        ("reach me at priya.ramanathan [at] outlook (dot) com for the rota", "email_spoken"),
        ("Le code de l'interphone chez ma mère c'est B2719", "pin"),
        ("the door code is 4471# and the spare key is under the mat", "pin"),
        ("my viral load has been undetectable for two years now", "health_self_statement"),
        ("my number is oh seven eight three one, four four two, six nine one", "phone_spoken"),
    ],
)
def test_disclosures_in_other_shapes_and_scripts_are_read(text: str, kind: str) -> None:
    assert kind in [e.kind for e in scan(text).evidence if e.strong]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("The chase text says 813507, type it in quick before it expires", "otp"),
        ("post op day 4 after they took my gallbladder out, when can i shower", "health_recovery"),
    ],
)
def test_a_code_in_a_text_and_an_organ_taken_out_are_read(text: str, kind: str) -> None:
    assert kind in [e.kind for e in scan(text).evidence if e.strong]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # A number that fails its checksum, given as the writer's own: mistyped, still theirs.
        (
            "card 4532 7781 0093 2246 exp 08/27 keeps getting declined on uber eats",
            "card_unverified",
            "4532 7781 0093 2246",
        ),
        (
            "card number is five four one two seven five three three zero zero one eight four four "
            "nine six exp oh nine twenty six",
            "card_unverified",
            None,
        ),
        ("帮我给房东写个短信，说押金退到我的卡上：6217 0033 2000 4418 563", "card_unverified", None),
        ("meine IBAN ist DE72 4306 0967 1184 2290 00, schreib sie in die Mail", "iban_unverified", None),
        # "its" after the label, and labels in scripts without spaces
        (
            "my ex still knows my icloud password, its Brooklyn2016!! how do i change it",
            "password",
            "Brooklyn2016!!",
        ),
        ("the tech wants the router serial, its 2A5X88QF0031, is that safe", "serial", "2A5X88QF0031"),
        ("私の電話番号は090-4412-7738です。メールに入れてください", "phone_generic", "090-4412-7738"),
        ("我妈妈上个月做了心脏搭桥手术，现在饮食要注意什么？", "health_self_statement", "手术"),
        ("息子が喘息なので、吸入器を持たせると先生に伝えてください", "health_self_statement", "喘息"),
        # pay per period without a label or a currency sign
        ("i only clear 1900 a month after rent how am i supposed to save", "money_anchored", "1900"),
        ("ssdi pays me 1,284 a month, can i do part time at the library", "money_anchored", "1,284"),
        ("new apartment wants proof of income, i make 22.50/hr full time", "money_anchored", "22.50"),
        # conditions in other languages, with the writer in them
        ("pano ko sasabihin kay mama na buntis ako, 3 months na", "health_term_anchored", "buntis"),
        (
            "ma fille de 6 ans est épileptique, comment l'expliquer à sa maîtresse ?",
            "health_term_anchored",
            "épileptique",
        ),
        ("vivo en calle alcalá 214, 3ºB y la calefacción falla", "street_after_cue", "calle alcalá 214"),
    ],
)
def test_mistyped_numbers_and_unlabelled_statements_are_read(text: str, kind: str, value: str | None) -> None:
    found = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]
    assert any(k == kind and (value is None or v == value) for k, v in found), found


@pytest.mark.parametrize(
    "text",
    [
        "Is 4532 7781 0093 2246 a valid card number? I think it fails Luhn.",
        "Generate a fake IBAN like DE72 4306 0967 1184 2290 00 for the test fixtures",
        "Quick: is PIN 0000 or 1234 more commonly guessed? writing a security awareness quiz",
        "- Minimum credit score 620 for standard products; 680 for loans above 90% LVR.",
        "Pay the invoice from Acme Supplies Ltd, their bank details are on the invoice: sort code 40-11-62, "
        "acc 71930455. How do I verify it?",
        "Our warehouse is at Unit 7, Parkside Industrial Estate, Leeds LS11 5SX: draft courier instructions",
        "Pay to Harbor Point Property Management, 900 Harbor Point Blvd, Suite 210, Tampa, FL 33602.",
        "Helios Cloud Inc., offices at 500 Howard Street, San Francisco, CA 94105, and Tern Retail Group plc",
        "Our Employee Assistance Programme offers six free counselling sessions.",
        "Owner: Identity team. Ticket: INC-4410.",
        "- ship date for v2.3.0 moved to 22 Aug\n- Raj to write the migration guide",
        "## 2.14.0\n- feat: SSO via SCIM 2.0",
        'I\'m writing a thriller. Tighten this: "Your name is Daniel Vore. Born March 3rd, 1979."',
        "Punch up the dialogue in this scene from my screenplay:\nMAGGIE: Call this number. 555-0173.",
        "什么是糖尿病？",
        "clear 1900 rows from the table, then I get 2500 errors a month in the log",
    ],
)
def test_questions_rules_organisations_and_fiction_give_no_evidence(text: str) -> None:
    assert [(e.kind, text[e.start : e.end]) for e in scan(text).evidence if e.strong] == []


def test_a_policy_list_and_a_school_notice_imply_nobody() -> None:
    assert scan("- Income: permanent employees need 2 recent payslips").signals["implied_self"] == 0
    assert scan("Parents should contact the school office before 9am.").signals["implied_self"] == 0
    # A figure after the label is still someone's: "Rent: 1,200. Savings: 3k."
    assert scan("Rent: 1,200. How do I budget?").signals["implied_self"] == 1


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("my phone got nicked, IMEI is 353917104582266. how do I get it blocked", "imei_unverified",
         "353917104582266"),
        ("My employer is asking me to email my BSN (it's 2384 71 960) with a copy of my ID", "gov_id",
         "2384 71 960"),
        ("i keep forgetting my debit card pin, it's 7391, any trick to remember it", "pin", "7391"),
        ("先週、うつ病と診断されて休職しています。", "health_self_statement", "うつ病"),
        ("Tenho endometriose profunda e a dor está insuportável", "health_term_anchored", "endometriose"),
    ],
)  # fmt: skip
def test_labelled_values_after_brackets_and_its_are_read(text: str, kind: str, value: str) -> None:
    found = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]
    assert (kind, value) in found, found


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("Put this on the server: ssh-ed25519 "
         "AAAAC3NzaC1lZDI1NTE5AAAAIHc9mXqP2vLk7RtY4wZn8bE1sJd6HfA3gU0oIeYq5Xw ci", "public_key"),
        ("What does this Etherscan transaction hash show? "
         "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060", "hex_string"),
        ("Our fixtures use MAC 02:00:00:00:00:01 (locally administered)", "mac_placeholder"),
        ("is IMEI 353917104582266 valid? the checker says no", "imei_invalid"),
    ],
)  # fmt: skip
def test_public_keys_chain_hashes_fixture_macs_and_asked_imeis_give_nothing(text: str, signal: str) -> None:
    found = scan(text)
    assert found.evidence == []
    assert found.signals[signal] == 1


def test_a_question_about_a_routing_numbers_bank_is_no_evidence() -> None:
    assert scan("which bank does routing number 021000021 belong to?").evidence == []
    mine = scan("my routing number is 021000021 and account 12345678")
    assert [e.kind for e in mine.evidence] == ["routing", "account_number"]


def test_table_cells_are_read_under_headers_that_name_them() -> None:
    text = (
        "Is this import-ready for the payroll software?\n"
        "employee_id,name,sort_code,account_no,gross_monthly\n"
        "1001,Anita Kowal,20-45-77,28460719,2450.00\n"
        "1002,Lee Brannigan,40-11-62,71024583,3100.00"
    )
    found = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]
    assert ("sort_code", "20-45-77") in found
    assert ("account_number", "71024583") in found
    assert ("money_anchored", "3100.00") in found
    assert not [kind for kind, _ in found if kind == "postcode"]  # "1001,Anita": a row id
    # Companies' figures in a sales table, and sample rows asked for, are no one's.
    assert scan("account,stage,amount,probability\nBrightwater GmbH,Negotiation,120000,60%").evidence == []
    sample = "Generate sample rows for this layout:\nname,ssn,salary\nJane Roe,123-45-6789,50000"
    assert [e.kind for e in scan(sample).evidence if e.kind in ("gov_id", "money_anchored")] == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Fill in the chronology: client Amanuel Tesfaye, Eritrean, Home Office ref T1187234", "name_field",
         "Amanuel Tesfaye"),
        ("Make me a WiFi QR string: WIFI:T:WPA;S:VM4827193;P:zq7Lmnk2Tpxw;; does order matter?", "password",
         "zq7Lmnk2Tpxw"),
    ],
)  # fmt: skip
def test_a_role_before_a_full_name_and_a_wifi_qr_key_are_read(text: str, kind: str, value: str) -> None:
    assert (kind, value) in [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]


@pytest.mark.parametrize(
    "text",
    [
        "This is a composite case built from several clients, no real individual: 'Maria', 34, has "
        "been prescribed co-codamol and her rent is £850 a month.",
        "Let's practise. You're a patient called Maggie who's been prescribed warfarin. Start.",
        "Present: President Linda Marsh, Vice President Carl Ybarra. Motion to approve the budget.",
        "Our test suite uses NHS number 943 476 5919 for the happy path.",
        "Use obviously fake details like account 00000000 and sort code 00-00-00 in the phishing demo.",
        "the patient Safety Officer reviewed the incident",
    ],
)
def test_declared_fiction_office_holders_and_test_values_give_no_evidence(text: str) -> None:
    assert [(e.kind, text[e.start : e.end]) for e in scan(text).evidence if e.strong] == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (
            "my wife's due date is Aug 3 so I'll need paternity leave",
            "pregnancy_statement",
            "wife's due date is",
        ),
        ("Turning 33 on 9 february, same day as my twin", "dob", "33 on 9 february"),
        ("Write a birthday poem for my daughter, she turns 7 on June 3rd", "dob", "7 on June 3rd"),
        ("Mom's only income is $1,340 a month from social security", "money_anchored", "$1,340"),
        ("Kredi kartı borcum 47.000 TL, maaşım 32.000 TL. Teklif mantıklı mı?", "money_anchored", "32.000"),
        ("debit pin is 2580, is that too obvious?", "pin", "2580"),
    ],
)
def test_due_dates_ages_on_a_date_and_family_possessives_are_read(text: str, kind: str, value: str) -> None:
    assert (kind, value) in [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]


@pytest.mark.parametrize(
    "text",
    [
        "my invoice due date is Aug 3, can I pay late?",
        "the company turns 10 on May 1, plan a party",
        "Write a poem where detective Ana Kovač finds the password 'Moonlight77'",
    ],
)
def test_invoice_due_dates_company_anniversaries_and_invented_poems_are_no_evidence(text: str) -> None:
    assert [(e.kind, text[e.start : e.end]) for e in scan(text).evidence if e.strong] == []


def test_a_street_address_read_out_in_words_is_read_and_a_distance_is_not() -> None:
    text = "my address is four seventeen west maple street unit twelve boise idaho, format it"
    found = [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]
    assert ("street_address", "four seventeen west maple street") in found
    for other in ("we live a ten minute drive from the beach", "my address is on a two way street"):
        assert [e for e in scan(other).evidence if e.kind == "street_address"] == []


def test_a_medical_test_is_no_cue_of_test_data() -> None:
    assert scan("my blood test came back with high cholesterol").signals["example_cue"] == 0
    assert scan("covid test results were positive").signals["example_cue"] == 0
    assert scan("use a test card number in the sandbox").signals["example_cue"] >= 1


def test_a_clause_after_a_comma_can_speak_for_the_writer() -> None:
    found = scan("Sorry for vanishing from the chat, had a really bad depressive episode. Back now")
    assert "health_term_anchored" in [e.kind for e in found.evidence]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("the chemo's making me so tired, any tips", "health_term_anchored", "chemo's"),
        ("Mein Gehalt ist 3.200 netto, reicht das?", "money_anchored", "3.200"),
        ("my bank app pw is the same as my email one (Chelsea#1905), should i change it", "password",
         "Chelsea#1905"),
        ("period's 10 days late and the test was negative", "pregnancy_statement", "period's 10 days late"),
        ("昨日から抗がん剤を始めて、吐き気がひどい", "health_self_statement", "抗がん剤"),
        ("j'ai fait une fausse couche la semaine dernière", "health_term_anchored", "fausse couche"),
    ],
)  # fmt: skip
def test_contractions_bracketed_passwords_and_more_languages_are_read(
    text: str, kind: str, value: str
) -> None:
    assert (kind, value) in [(e.kind, text[e.start : e.end]) for e in scan(text).evidence]


@pytest.mark.parametrize(
    "text",
    [
        "this spreadsheet is giving me a heart attack, how do i do a vlookup",
        "im allergic to mondays fr",
        "パスワードの安全な管理方法を教えて",
    ],
)
def test_figures_of_speech_and_a_question_about_passwords_give_no_evidence(text: str) -> None:
    assert [e for e in scan(text).evidence if e.category in ("health", "credential")] == []
