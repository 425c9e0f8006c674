"""Word lists the recognisers and the feature extractor share.

The lists are deliberately broad rather than exhaustive: the trained model
also sees word and character n-grams, so a term missing here can still be
learnt from context. Entries are lower case; multi-word entries are matched
as phrases with word boundaries.
"""

# Natural-language data: long lines are sentences, not code.
# ruff: noqa: E501

from __future__ import annotations

# fmt: off

# Conditions, symptoms and states whose disclosure about a person is health
# information. Common misspellings are included because prompts are typed
# in a hurry.
HEALTH_CONDITIONS: tuple[str, ...] = (
    # Spanish, Portuguese, French, German and Italian names people type for common ones
    "depresión", "depressão", "dépression", "ansiedad", "ansiedade", "anxiété", "epilepsia",
    "épilepsie", "epilessia", "cáncer", "câncer", "cancro", "krebs", "quimioterapia",
    "quimio", "chimiothérapie", "chimio", "diálisis", "diálise", "dialyse", "dialisi",
    "embarazada", "grávida", "enceinte", "schwanger", "incinta", "esclerosis múltiple",
    "esclerose múltipla", "sclérose en plaques", "asma", "asthme", "tumeur", "infarto",
    "infarctus", "herzinfarkt", "ictus", "trastorno bipolar", "bipolaire", "esquizofrenia",
    "schizophrénie", "autismo", "autisme", "tdah", "diabète", "diabete", "vih", "sida",
    "demencia", "demência", "démence", "demenz", "cirrosis", "leucemia", "leucémie",
    "hypothyroïdie", "hipotiroidismo", "hipotireoidismo", "hypothyreose",
    "schilddrüsenunterfunktion", "hyperthyroïdie", "hipertiroidismo", "steatosi", "esteatosis",
    "neumonía", "pneumonia", "polmonite", "lungenentzündung", "epoc", "bpco", "copd",
    "insuficiencia cardíaca", "insuffisance cardiaque", "herzinsuffizienz", "ipertensione",
    "hipertensión", "hipertensão", "bluthochdruck", "colelitiasi", "calcoli", "cálculos",
    "diabetes", "diabetic", "diabetis", "prediabetes", "type 1 diabetes", "type 2 diabetes",
    "asthma", "asthmatic", "copd", "emphysema", "bronchitis", "pneumonia", "tuberculosis",
    "cancer", "tumor", "tumour", "leukemia", "leukaemia", "lymphoma", "melanoma", "carcinoma",
    "metastatic", "malignant", "benign", "chemo", "chemotherapy", "radiotherapy", "radiation therapy",
    "depression", "depressed", "depresion", "anxiety", "panic attacks", "panic disorder",
    "ptsd", "ocd", "adhd", "autism", "autistic", "bipolar", "schizophrenia",
    "schizoaffective", "eating disorder", "anorexia", "bulimia", "insomnia", "suicidal",
    "self-harm", "self harm", "burnout", "postpartum", "psychosis", "borderline personality",
    "cutting myself", "been cutting", "cutting again", "gürtelrose", "anemia ferropriva", "anemia",
    "anämie", "anémie", "anemia ferropénica", "épileptique", "epiléptico", "epiléptica",
    "epilettico", "epilettica", "epileptisch", "brca", "brca1", "brca2", "brca positive",
    "mononucleosis", "has mono", "got mono", "have mono", "buntis", "hamil", "hamileyim",
    "şeker hastası", "seker hastasi", "kanser", "depresyon", "سكري", "السكري", "سرطان", "حامل",
    "اكتئاب", "الربو", "asthmatique", "asmático", "asmática", "diabétique", "diabético",
    "diabética", "diabetiker", "diabetica", "diabetico", "endometriose", "endometriosis",
    "hurting myself", "hurt myself", "kill myself", "killing myself", "end my life",
    "period's late", "period is late", "late period", "missed my period", "fausse couche",
    "aborto espontáneo", "fehlgeburt", "aborto spontaneo", "fehlgeburt gehabt",
    "hiv", "aids", "hepatitis", "herpes", "chlamydia", "gonorrhea", "syphilis", "sti",
    "hpv", "covid", "covid-19", "long covid", "flu", "influenza", "shingles", "lyme disease",
    "epilepsy", "seizure", "seizures", "migraine", "migraines", "stroke", "aneurysm",
    "depressive episode", "manic episode", "psychotic episode", "kidney stone",
    "dementia", "alzheimer", "alzheimer's", "parkinson", "parkinson's", "multiple sclerosis",
    "ms flare", "huntington", "cerebral palsy", "concussion",
    "hypertension", "high blood pressure", "low blood pressure", "heart attack", "heart failure",
    "arrhythmia", "afib", "atrial fibrillation", "angina", "high cholesterol", "cholesterol",
    "arthritis", "rheumatoid", "osteoporosis", "lupus", "fibromyalgia", "gout", "scoliosis",
    "crohn's", "crohns", "colitis", "ibs", "celiac", "coeliac", "gerd", "acid reflux", "ulcer",
    "kidney disease", "kidney stones", "dialysis", "liver disease", "cirrhosis", "fatty liver",
    "thyroid", "hypothyroidism", "hyperthyroidism", "hashimoto", "graves disease", "pcos",
    "endometriosis", "infertility", "ivf", "pregnant", "pregnancy", "miscarriage", "abortion",
    "menopause", "erectile dysfunction", "sleep apnea", "anemia", "anaemia", "sickle cell",
    "hemophilia", "allergy", "allergic", "anaphylaxis", "eczema", "psoriasis", "acne",
    "peanut allergy", "nut allergy", "food allergy", "shellfish allergy", "penicillin allergy",
    "epipen", "epipens",
    "obesity", "obese", "addiction", "addicted", "alcoholism", "alcoholic", "relapse", "rehab",
    "overdose", "opioid", "sober", "sobriety", "disability", "disabled",
    "amputation", "paralysis", "paralyzed", "blind", "deaf", "hearing loss", "tinnitus",
    "glaucoma", "cataract", "macular degeneration", "infection", "uti", "sepsis", "fracture",
    "broken leg", "broken arm", "torn acl", "herniated disc", "back surgery", "surgery",
    "transplant", "biopsy", "diagnosis", "diagnosed", "diagnosed with", "prognosis", "terminal",
    "palliative", "hospice", "remission", "symptoms", "chronic pain", "chronic",
    "hysterectomy", "mastectomy", "lumpectomy", "vasectomy", "appendectomy", "c-section",
    "cesarean", "colostomy", "hip replacement", "knee replacement", "bypass surgery",
    "angioplasty", "stent", "ablation", "infusion", "infusions", "radiation", "physical therapy",
    "physio", "rehab", "detox", "inpatient", "psych ward", "mental breakdown", "nervous breakdown",
    "diagnosis", "miscarried", "stillbirth", "ivf cycle", "egg retrieval", "sti test",
    "positive for", "tested positive", "my meds", "my medication", "my medications",
    "drug test", "drug screen", "weeks along", "weeks pregnant", "months pregnant",
    "throwing up", "vomiting", "nausea", "chest pains", "chest pain", "shortness of breath",
    "blacked out", "fainted", "seizure", "panic attack", "suicidal thoughts", "self harming",
    "miscarried", "lump", "rash", "missed period", "positive pregnancy test",
    "relapsed", "relapsing", "overdosed", "hospitalized", "hospitalised", "hospitalization",
    "months clean", "days clean", "years clean", "months sober", "days sober", "type 1",
    "type 2", "t1d", "t2d", "dexcom", "freestyle libre", "insulin resistant", "on dialysis",
    "period is late", "late period", "fever", "high fever", "cough", "coughing",
    "sexually assaulted", "assaulted", "raped", "abused", "smoke a pack", "smoking", "vaping",
    "headache", "headaches", "dizzy", "dizziness", "sprained", "injured", "injury", "in pain",
    "back pain", "stomach pain", "bleeding heavily", "blood in my", "nosebleeds",
)

# Treatments given in rounds or sessions, and organ function a specialist reports on.
HEALTH_TREATMENTS: tuple[str, ...] = (
    "ect session", "ect sessions", "ect treatment", "ect treatments", "electroconvulsive",
    "electroshock", "ketamine infusion", "immunotherapy", "radiotherapy", "dialysis",
    "hemodialysis", "haemodialysis", "transfusion", "plasmapheresis", "ivf", "egg retrieval",
    "embryo transfer", "iui", "chemo round", "chemo cycle", "folfox", "folfirinox", "r-chop",
    "kidney function", "liver function", "lung function", "thyroid function", "heart function",
    "detox", "rehab", "inpatient rehab", "outpatient program", "slipped disc", "herniated disc",
)
# Statements about being off work ill: a disclosure once tied to the writer.
SICK_LEAVE_PHRASES: tuple[str, ...] = (
    "calling in sick", "call in sick", "called in sick", "call out sick", "calling out sick",
    "off sick", "out sick", "home sick", "sick day", "sick days", "sick note", "fit note",
    "doctor's note", "doctors note", "signed off sick", "signed me off", "signed off work",
    "off work sick", "too sick to", "came down with", "come down with", "bedridden",
    "laid up", "throwing up", "food poisoning", "stomach bug", "migraine attack",
    "krankgeschrieben", "krankschreibung", "arrêt maladie", "baja médica", "de baja", "in malattia",
    "atestado médico", "zwolnienie lekarskie", "ziekgemeld",
)

# Medications and medical products; brand and generic names.
HEALTH_MEDICATIONS: tuple[str, ...] = (
    "sertralina", "fluoxetina", "metformina", "insulina", "levotiroxina", "valproato",
    "quetiapina", "litio", "lítio", "omeprazol", "levothyrox", "euthyrox", "l-thyroxin",
    "metformin", "insulin", "ozempic", "wegovy", "mounjaro", "semaglutide", "jardiance",
    "lisinopril", "amlodipine", "losartan", "metoprolol", "atenolol", "propranolol",
    "hydrochlorothiazide", "furosemide", "warfarin", "eliquis", "xarelto", "clopidogrel",
    "atorvastatin", "lipitor", "simvastatin", "rosuvastatin", "crestor", "statins", "statin",
    "sertraline", "zoloft", "fluoxetine", "prozac", "escitalopram", "lexapro", "citalopram",
    "paroxetine", "paxil", "venlafaxine", "effexor", "duloxetine", "cymbalta", "bupropion",
    "wellbutrin", "mirtazapine", "trazodone", "lithium", "lamotrigine", "lamictal",
    "quetiapine", "seroquel", "aripiprazole", "abilify", "risperidone", "olanzapine",
    "alprazolam", "xanax", "lorazepam", "ativan", "clonazepam", "klonopin", "diazepam", "valium",
    "adderall", "ritalin", "methylphenidate", "vyvanse", "concerta", "strattera",
    "oxycodone", "oxycontin", "hydrocodone", "vicodin", "percocet", "morphine", "fentanyl",
    "tramadol", "codeine", "methadone", "suboxone", "buprenorphine", "naloxone", "narcan",
    "gabapentin", "pregabalin", "lyrica", "ibuprofen", "naproxen", "prednisone", "prednisolone",
    "methotrexate", "humira", "enbrel", "remicade", "levothyroxine", "synthroid", "omeprazole",
    "pantoprazole", "amoxicillin", "azithromycin", "doxycycline", "ciprofloxacin",
    "antibiotics", "antidepressants", "antidepressant", "antipsychotics", "benzos",
    "birth control", "plan b", "truvada", "antiretroviral", "viagra",
    "cialis", "finasteride", "spironolactone", "estradiol", "testosterone", "hrt",
    "inhaler", "albuterol", "ventolin", "epipen", "insulin pump", "cgm", "pacemaker",
    "cpap", "chemo pills", "tamoxifen", "herceptin", "melatonin", "accutane", "isotretinoin",
    "zofran", "ondansetron", "vyvanse", "topamax", "plaquenil", "keppra", "singulair",
    "trulicity", "farxiga", "zepbound", "latuda", "buspar", "ambien", "norco", "lasix",
    "coumadin", "nexium", "flonase", "symbicort", "spiriva", "entresto", "imitrex",
    "lantus", "levemir", "tresiba", "toujeo", "basaglar", "novolog", "novorapid", "humalog",
    "fiasp", "apidra", "victoza", "saxenda", "byetta", "glipizide", "januvia", "invokana",
    "depakote", "tegretol", "clozapine", "zyprexa", "risperdal", "effexor xr", "pristiq",
    "hydroxyzine", "propranolol", "clonidine", "guanfacine", "intuniv", "dexamphetamine",
    "elvanse", "modafinil", "sumatriptan", "rizatriptan", "nurtec", "aimovig", "emgality",
    "botox injections", "keytruda", "opdivo", "xeloda", "letrozole", "anastrozole", "tagrisso",
)

# Clinical measurements and care settings: a value or a visit next to one
# of these, about someone, is a test result or a care episode.
HEALTH_CLINICAL: tuple[str, ...] = (
    "a1c", "hba1c", "blood sugar", "glucose", "blood pressure", "ldl", "hdl", "hcg",
    "triglycerides", "cholesterol level", "psa", "tsh", "white blood cell", "wbc", "hemoglobin",
    "platelets", "creatinine", "egfr", "viral load", "cd4", "bmi", "blood test", "blood work",
    "bloodwork", "lab results", "test results", "mri", "ct scan", "cat scan", "x-ray", "xray",
    "ultrasound", "ecg", "ekg", "mammogram", "colonoscopy", "pap smear", "biopsy results",
    "pathology", "prescription", "prescribed", "perscription", "presription", "dosage", "dose",
    "mg", "refill", "pharmacy", "pharmacist", "doctor", "physician", "psychiatrist",
    "psychologist", "therapist", "therapy", "counselor", "counsellor", "oncologist",
    "cardiologist", "neurologist", "endocrinologist", "dermatologist", "gynecologist", "ob-gyn",
    "obgyn", "urologist", "surgeon", "hospital", "emergency room", "icu",
    "clinic", "appointment", "admitted", "discharged", "inpatient", "outpatient", "medical leave",
    "sick leave", "medical record", "medical records", "health insurance claim", "medicare",
    "medicaid", "nhs number", "patient id", "mrn", "medical history",
    "rheumatologist", "nephrologist", "gastroenterologist", "pulmonologist", "hematologist",
    "haematologist", "orthopedist", "orthopaedic surgeon", "pediatrician", "paediatrician",
    "physiotherapist", "physio", "midwife", "gp", "consultant", "radiologist", "ophthalmologist",
    "allergist", "hepatologist", "ent", "er", "a&e", "urgent care", "pet scan", "echocardiogram",
    "pathology report", "scan results", "lab work", "labs", "post-op", "pre-op", "post op", "pre op",
    # clinical documents and findings as other languages write them
    "referto", "ecografia", "ecografía", "diagnosi", "diagnóstico", "diagnostic", "informe de alta",
    "informe médico", "historia clínica", "paciente", "paziente", "exame", "resultado de exame",
    "hemograma", "befund", "arztbrief", "entlassungsbrief", "laborwerte", "compte rendu",
    "ordonnance", "ricetta", "receta", "receita", "prescrição", "ordonnance médicale",
)

FINANCIAL_TERMS: tuple[str, ...] = (
    "salary", "salery", "income", "paycheck", "pay check", "payslip", "pay stub", "wages",
    "wage", "hourly rate", "bonus", "earn", "earning", "earnings", "make a year",
    "take home", "take-home", "net pay", "gross pay", "debt", "debts", "owe", "owed", "owing",
    "loan", "loans", "student loan", "student loans", "mortgage", "mortage", "remortgage",
    "heloc", "credit score", "credit scores", "fico", "credit report", "credit limit",
    "credit card debt", "balance", "balances", "overdraft", "overdrawn", "savings", "checking account", "current account", "bank account", "bank statement",
    "401k", "401(k)", "ira", "roth", "pension", "net worth", "inheritance", "alimony", "child support", "rent", "arrears",
    "behind on", "late payment", "missed payment", "missed payments", "collections",
    "debt collector", "bankruptcy", "bankrupt", "filed ch 7", "filed chapter 7", "filed ch 13",
    "filed chapter 13", "filed for bankruptcy", "chapter 7 bankruptcy", "foreclosure", "repossessed", "repossession",
    "eviction", "evicted", "defaulted", "tax return", "tax refund", "taxes owed",
    "irs", "hmrc", "w-2", "w2", "1099", "p60", "payday loan", "interest rate",
    "minimum payment", "credit card bill", "wire transfer", "withdrawal", "unemployed", "unemployment", "laid off",
    "welfare", "food stamps", "financial aid", "inherited", "inheritance", "paid off",
    "pay off", "in debt", "maxed out", "credit limit", "overdue", "garnished", "garnishment",
    "repayment plan", "settlement", "net income", "annual income", "household income",
    "missed two payments", "missed a payment", "missed my payment", "missed 2 payments",
    "behind on payments", "can't afford", "cant afford", "paycheck to paycheck",
    "credit card", "credit cards", "car payment", "car loan", "pay rent", "paying rent",
    "pay my rent", "my rent", "back rent", "medical bill", "medical bills",
)

# Lower-case lead words of general questions and requests for explanations:
# a prompt that opens like this usually asks about a topic, not a person.
GENERIC_QUESTION_OPENERS: tuple[str, ...] = (
    "what is", "what's", "whats", "what are", "what does", "what do", "how does", "how do",
    "how to", "how can", "how should", "how much", "how many", "how long", "why do", "why does",
    "why is", "why are", "when did", "when was", "who was", "who is", "is it", "are there",
    "can you explain", "explain", "define", "describe", "compare", "list", "give me",
    "tell me about", "write a", "write an", "generate", "summarize", "summarise",
    "translate", "create a", "suggest", "recommend", "which", "difference between",
    "is it safe to", "symptoms of", "signs of", "can my employer", "can employers",
    "can an employer", "is it legal for",
)

# Cues that a number or identifier is an example, a placeholder, a test value
# or invalid; the "keyword traps" of the requirement.
EXAMPLE_CUES: tuple[str, ...] = (
    "example", "examples", "e.g.", "e.g", "for instance", "sample", "dummy", "fake", "mock",
    "placeholder", "test", "testing", "test mode", "sandbox", "invalid", "not valid",
    "isn't valid", "is not a valid", "not a real", "fictional", "fictitious", "made up",
    "made-up", "hypothetical", "imaginary", "lorem ipsum", "template", "format", "regex",
    "regular expression", "validate", "validation", "validator", "pattern", "generate",
    "random", "documentation", "docs", "tutorial", "character", "story", "novel", "screenplay",
    "demo", "redacted", "masked", "xxx", "anonymized", "anonymised", "episode", "storyline",
    "sitcom", "tv show", "the books", "fanfic", "fan fiction", "protagonist", "plot twist",
)

# Words that put a person in public view: their health, money or birthday told in an
# interview or a biography is public knowledge, whether or not the name is a listed one.
PUBLIC_CONTEXT_CUES: tuple[str, ...] = (
    "publicly", "public eye", "interview", "interviews", "biography",
    "memoir", "documentary", "press conference", "famous", "celebrity", "celebrities", "singer",
    "actor", "actress", "athlete", "olympian", "senator", "prime minister", "rapper",
    "footballer", "quarterback", "pop star", "popstar", "talk show host", "opened up about",
    "spoken openly", "talked openly", "went public", "net worth", "endorsement", "endorsements",
)

# Words that tie a fact to a specific person: first person, possessives,
# relations and roles.
RELATION_WORDS: tuple[str, ...] = (
    "wife", "husband", "partner", "boyfriend", "girlfriend", "fiance", "fiancee", "spouse",
    "son", "daughter", "kid", "kids", "child", "children", "baby", "toddler", "teen",
    "mom", "mum", "mother", "dad", "father", "parents", "brother", "sister", "sibling",
    "grandma", "grandmother", "grandpa", "grandfather", "aunt", "uncle", "cousin", "niece",
    "nephew", "friend", "roommate", "flatmate", "neighbor", "neighbour", "boss", "manager",
    "coworker", "co-worker", "colleague", "employee", "employer", "landlord", "tenant",
    "client", "customer", "patient", "student", "teacher", "doctor", "nurse", "caregiver",
    "in-law", "stepdad", "stepmom", "ex", "ex-wife", "ex-husband",
    # Spanish, Portuguese, French, German, Italian
    "madre", "padre", "mamá", "papá", "hijo", "hija", "hijos", "esposa", "esposo", "marido",
    "pareja", "hermano", "hermana", "abuela", "abuelo", "novio", "novia", "compañera",
    "compañero", "jefe", "jefa", "mãe", "pai", "filho", "filha", "irmão", "irmã", "avó", "avô",
    "namorado", "namorada", "mère", "père", "fils", "fille", "femme", "frère", "sœur", "soeur",
    "grand-mère", "grand-père", "copain", "copine", "collègue", "mutter", "vater", "sohn",
    "tochter", "bruder", "schwester", "oma", "opa", "freundin", "kollege", "kollegin", "ehefrau",
    "ehemann", "figlio", "figlia", "moglie", "marito", "fratello", "sorella", "nonna", "nonno",
    "collega",
)

# A small first-name list used as one weak signal among several for person
# names (capitalised word pairs and introductions carry most of the weight).
FIRST_NAMES: tuple[str, ...] = (
    "james", "john", "robert", "michael", "william", "david", "richard", "joseph", "thomas",
    "charles", "christopher", "daniel", "matthew", "anthony", "mark", "donald", "steven",
    "paul", "andrew", "joshua", "kevin", "brian", "george", "timothy", "ronald", "jason",
    "edward", "jeffrey", "ryan", "jacob", "gary", "nicholas", "eric", "jonathan", "stephen",
    "larry", "justin", "scott", "brandon", "benjamin", "samuel", "gregory", "alexander",
    "patrick", "frank", "raymond", "jack", "dennis", "jerry", "tyler", "aaron", "jose", "adam",
    "nathan", "henry", "zachary", "douglas", "peter", "kyle", "noah", "ethan", "jeremy",
    "walter", "christian", "keith", "roger", "terry", "austin", "sean", "gerald", "carl",
    "harold", "dylan", "arthur", "lawrence", "jordan", "jesse", "bryan", "billy", "bruce",
    "gabriel", "joe", "logan", "alan", "juan", "albert", "willie", "elijah", "wayne", "randy",
    "vincent", "mason", "roy", "ralph", "bobby", "russell", "bradley", "philip", "eugene",
    "mary", "patricia", "jennifer", "linda", "elizabeth", "barbara", "susan", "jessica",
    "sarah", "karen", "lisa", "nancy", "betty", "sandra", "margaret", "ashley", "kimberly",
    "emily", "donna", "michelle", "carol", "amanda", "melissa", "deborah", "stephanie",
    "dorothy", "rebecca", "sharon", "laura", "cynthia", "amy", "kathleen", "angela", "shirley",
    "brenda", "emma", "anna", "pamela", "nicole", "samantha", "katherine", "christine", "helen",
    "debra", "rachel", "carolyn", "janet", "maria", "catherine", "heather", "diane", "olivia",
    "julie", "joyce", "victoria", "ruth", "virginia", "lauren", "kelly", "christina", "joan",
    "evelyn", "judith", "andrea", "hannah", "megan", "cheryl", "jacqueline", "martha",
    "madison", "teresa", "gloria", "sara", "janice", "ann", "kathryn", "abigail", "sophia",
    "frances", "jean", "alice", "judy", "isabella", "julia", "grace", "amber", "denise",
    "danielle", "marilyn", "beverly", "charlotte", "natalie", "theresa", "diana", "brittany",
    "doris", "kayla", "alexis", "lori", "marie", "chloe", "mia", "ava", "zoe", "lily",
    "mohammed", "muhammad", "ahmed", "ali", "omar", "hassan", "fatima", "aisha", "layla",
    "yusuf", "ibrahim", "mustafa", "khalid", "amir", "leila", "nadia", "priya", "rahul",
    "arjun", "ananya", "vikram", "deepak", "sanjay", "anil", "sunita", "kavya", "rohan",
    "wei", "li", "ming", "jing", "hui", "xin", "yan", "hiroshi", "takeshi", "yuki", "haruto",
    "sakura", "kenji", "min-jun", "ji-woo", "seo-yeon", "hyun", "carlos", "luis", "miguel",
    "jorge", "pedro", "alejandro", "diego", "javier", "sofia", "lucia", "valentina", "camila",
    "isabel", "carmen", "pablo", "mateo", "santiago", "giulia", "francesca", "marco", "luca",
    "giovanni", "alessandro", "matteo", "chiara", "pierre", "jean-luc", "francois", "camille",
    "chloé", "louis", "hugo", "lucas", "léa", "manon", "hans", "klaus", "jurgen", "jürgen",
    "lukas", "leon", "felix", "lena", "anja", "katrin", "sven", "lars", "erik", "ingrid",
    "astrid", "olaf", "bjorn", "mikael", "pekka", "aino", "jan", "piotr", "katarzyna",
    "agnieszka", "tomasz", "ivan", "dmitri", "olga", "natasha", "sergei", "anastasia",
    "oksana", "kwame", "kofi", "ama", "chinedu", "ngozi", "emeka", "oluwaseun", "thabo",
    "zanele", "amara", "tunde", "siobhan", "niamh", "ciaran", "declan", "aoife", "connor",
    "liam", "oliver", "harry", "charlie", "freddie", "alfie", "archie", "ella", "isla",
    "poppy", "ruby", "millie", "aaliyah", "jamal", "darnell", "keisha", "tyrone", "latoya",
)

# Well-known public and historical figures and fictional characters: naming
# them identifies nobody private.
PUBLIC_FIGURES: tuple[str, ...] = (
    "abraham lincoln", "george washington", "thomas jefferson", "john f. kennedy",
    "jfk", "franklin roosevelt", "theodore roosevelt", "winston churchill", "napoleon",
    "napoleon bonaparte", "julius caesar", "cleopatra", "queen elizabeth", "king charles",
    "princess diana", "barack obama", "obama", "michelle obama", "donald trump", "trump",
    "joe biden", "biden", "kamala harris", "hillary clinton", "bill clinton", "george bush",
    "ronald reagan", "richard nixon", "vladimir putin", "putin", "xi jinping", "emmanuel macron",
    "angela merkel", "justin trudeau", "narendra modi", "nelson mandela", "mahatma gandhi",
    "gandhi", "martin luther king", "mlk", "albert einstein", "einstein", "isaac newton",
    "newton", "charles darwin", "darwin", "marie curie", "nikola tesla", "tesla",
    "stephen hawking", "galileo", "leonardo da vinci", "da vinci", "michelangelo",
    "pablo picasso", "picasso", "vincent van gogh", "van gogh", "william shakespeare",
    "shakespeare", "jane austen", "charles dickens", "mark twain", "ernest hemingway",
    "leo tolstoy", "tolstoy", "mozart", "beethoven", "bach", "elvis presley", "elvis",
    "michael jackson", "madonna", "beyonce", "beyoncé", "taylor swift", "rihanna", "drake",
    "kanye west", "lady gaga", "adele", "ed sheeran", "the beatles", "john lennon",
    "paul mccartney", "freddie mercury", "bob dylan", "elon musk", "musk", "jeff bezos",
    "bezos", "bill gates", "steve jobs", "mark zuckerberg", "zuckerberg", "warren buffett",
    "oprah winfrey", "oprah", "tom hanks", "brad pitt", "leonardo dicaprio", "meryl streep",
    "scarlett johansson", "keanu reeves", "morgan freeman", "denzel washington",
    "lebron james", "michael jordan", "serena williams", "roger federer", "rafael nadal",
    "lionel messi", "messi", "cristiano ronaldo", "ronaldo", "usain bolt", "tiger woods",
    "muhammad ali", "harry potter", "hermione granger", "sherlock holmes", "john watson",
    "james bond", "darth vader", "luke skywalker", "frodo", "gandalf", "batman", "superman",
    "spider-man", "bruce wayne", "clark kent", "tony stark", "mickey mouse", "homer simpson",
    "santa claus", "jane doe", "john doe", "joe bloggs", "john smith", "alice and bob",
    "sam altman", "satya nadella", "sundar pichai", "tim cook", "greta thunberg",
    "pope francis", "dalai lama", "malala yousafzai", "frida kahlo", "amelia earhart",
    # characters of well-known fiction, film and television
    "michael scott", "dwight schrute", "jim halpert", "pam beesly", "walter white", "jesse pinkman",
    "saul goodman", "tony soprano", "don draper", "jon snow", "daenerys targaryen",
    "tyrion lannister", "paddington", "paddington bear", "winnie the pooh", "peter rabbit",
    "bart simpson", "marge simpson", "lisa simpson", "ross geller", "rachel green",
    "chandler bing", "monica geller", "joey tribbiani", "phoebe buffay", "sheldon cooper",
    "leonard hofstadter", "ted lasso", "gregory house", "dr house", "meredith grey",
    "derek shepherd", "forrest gump", "indiana jones", "han solo", "princess leia",
    "hannibal lecter", "jack sparrow", "katniss everdeen", "bilbo baggins", "ron weasley",
    "albus dumbledore", "dumbledore", "voldemort", "elizabeth bennet", "mr darcy", "jay gatsby",
    "atticus finch", "holden caulfield", "captain ahab", "dorian gray", "hercule poirot",
    "miss marple", "nancy drew", "jessica fletcher", "carrie bradshaw", "don corleone",
    "vito corleone", "michael corleone", "tony montana", "rocky balboa", "john wick",
    "ellen ripley", "buzz lightyear", "shrek", "peppa pig", "spongebob", "spongebob squarepants",
    "scooby-doo", "charlie brown", "snoopy", "kermit the frog", "lara croft", "wednesday addams",
    "mr bean", "basil fawlty", "david brent", "alan partridge", "rick sanchez", "bojack horseman",
    "kendall roy", "logan roy", "tommy shelby", "jack reacher", "jason bourne", "ethan hunt",
    "bridget jones", "mary poppins", "willy wonka", "dorothy gale", "peter pan", "captain hook",
    "jean valjean", "javert", "cosette", "fantine", "madame bovary", "anna karenina", "don quixote",
    "gregor samsa", "ebenezer scrooge", "jane eyre", "heathcliff", "huckleberry finn", "tom sawyer",
    # people whose lives are public news
    "kim kardashian", "kylie jenner", "justin bieber", "selena gomez", "ariana grande",
    "billie eilish", "harry styles", "dua lipa", "bad bunny", "shakira", "jennifer lopez",
    "tom cruise", "will smith", "dwayne johnson", "zendaya", "margot robbie", "ryan reynolds",
    "chris hemsworth", "robert downey jr", "jennifer aniston", "angelina jolie", "johnny depp",
    "emma watson", "daniel radcliffe", "kate middleton", "princess of wales", "prince william",
    "prince harry", "meghan markle", "rishi sunak", "keir starmer", "boris johnson",
    "olaf scholz", "giorgia meloni", "volodymyr zelensky", "zelensky", "jacinda ardern",
    "kim jong un", "benjamin netanyahu", "javier milei", "shohei ohtani", "kylian mbappé",
    "kylian mbappe", "erling haaland", "neymar", "simone biles", "novak djokovic", "naomi osaka",
    "tom brady", "patrick mahomes", "stephen curry", "kobe bryant", "bruce willis",
    "michael j. fox", "michael j fox", "celine dion", "céline dion", "stephen king",
    "j.k. rowling", "jk rowling", "steve irwin", "mr beast", "mrbeast", "pewdiepie",
    "michael phelps", "demi lovato", "lady di", "magic johnson", "charlie sheen", "val kilmer",
    "christina applegate", "hailey bieber", "wentworth miller", "stephen fry", "mariah carey",
)

# Local parts of e-mail addresses that belong to a role or a team rather
# than to a person.
ROLE_EMAIL_LOCALPARTS: frozenset[str] = frozenset(
    {
        "info", "support", "help", "helpdesk", "sales", "noreply", "no-reply", "donotreply",
        "do-not-reply", "admin", "administrator", "contact", "hello", "hi", "team", "billing",
        "accounts", "privacy", "press", "media", "jobs", "careers", "hr", "marketing", "office",
        "webmaster", "postmaster", "hostmaster", "abuse", "security", "feedback", "service",
        "customerservice", "customer.service", "enquiries", "inquiries", "orders", "returns",
        "newsletter", "notifications", "alerts", "dev", "devops", "ops", "root", "legal",
        "compliance", "partners", "events", "reception", "bookings", "reservations",
        "contracts", "procurement", "tenders", "complaints", "servicedesk", "service.desk",
        "frontdesk", "enquiry", "finance", "payroll", "admissions", "appointments", "studio",
    }
)

# Domains reserved for documentation or obviously generic.
PLACEHOLDER_EMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "example.com", "example.org", "example.net", "example.edu", "test.com", "test.org",
        "domain.com", "yourdomain.com", "your-domain.com", "mydomain.com", "email.com",
        "company.com", "yourcompany.com", "acme.com", "foo.com", "bar.com", "foobar.com",
        "localhost", "invalid", "sample.com", "website.com", "somewhere.com", "xxx.com",
        "xxxx.com", "email.example", "mail.com.example",
    }
)

# Placeholder secrets and values people paste instead of the real thing.
PLACEHOLDER_SECRETS: frozenset[str] = frozenset(
    {
        "password", "passw0rd", "your_password", "yourpassword", "your-password", "mypassword",
        "<password>", "[password]", "{password}", "xxx", "xxxx", "xxxxx", "xxxxxx", "xxxxxxxx",
        "****", "*****", "******", "********", "...", "changeme", "secret", "your_api_key",
        "your-api-key", "yourapikey", "api_key", "apikey", "<api_key>", "<token>", "token",
        "your_token", "<your-token>", "redacted", "[redacted]", "null", "none", "empty",
        "hidden", "placeholder", "example", "sample", "dummy", "test", "abc123", "foo", "bar",
    }
)

# Famous street addresses: naming them discloses nobody's home.
LANDMARK_ADDRESSES: tuple[str, ...] = (
    "1600 pennsylvania avenue", "10 downing street", "11 downing street", "221b baker street",
    "221 baker street",
    "350 fifth avenue", "1 infinite loop", "1 apple park way", "1600 amphitheatre parkway",
    "4 privet drive", "742 evergreen terrace", "32 windsor gardens", "308 negra arroyo lane", "12 grimmauld place", "124 conch street",
    "1 microsoft way", "11 wall street", "30 rockefeller plaza", "1 hacker way",
    "405 lexington avenue", "20 w 34th st", "2 macquarie street", "1 main street",
    "123 main street", "123 main st", "123 fake street",
)

# Frequent English words: a capitalised one of these after "I'm" or as the
# value after "password is" is ordinary prose, not a name or a secret.
COMMON_WORDS: frozenset[str] = frozenset(["a", "about", "above", "across", "actually", "after", "again", "against", "all", "almost", "also", "always", "am", "an", "and", "another", "any", "anyone", "anything", "are", "around", "as", "ask", "asking", "at", "available", "away", "back", "bad", "be", "because", "been", "before", "being", "below", "best", "better", "between", "big", "both", "but", "by", "can", "cannot", "case", "certain", "change", "changed", "check", "checking", "close", "come", "coming", "completely", "confused", "correct", "could", "currently", "curious", "definitely", "did", "different", "do", "does", "doing", "done", "down", "during", "each", "easy", "either", "else", "empty", "enough", "even", "ever", "every", "everyone", "everything", "exactly", "expired", "fine", "first", "for", "forgotten", "found", "free", "from", "full", "getting", "given", "glad", "go", "going", "gone", "good", "got", "great", "happy", "hard", "has", "have", "having", "he", "hear", "her", "here", "hers", "high", "him", "his", "home", "hoping", "how", "however", "i", "if", "important", "in", "incorrect", "instead", "into", "invalid", "is", "it", "its", "just", "keep", "kind", "known", "last", "late", "least", "less", "let", "like", "likely", "little", "long", "looking", "lost", "lot", "made", "make", "many", "may", "maybe", "me", "mean", "might", "mine", "missing", "more", "most", "much", "must", "my", "need", "needed", "needs", "never", "new", "next", "nice", "no", "none", "normal", "not", "nothing", "now", "of", "off", "often", "ok", "okay", "old", "on", "once", "one", "only", "open", "or", "other", "our", "out", "over", "own", "part", "please", "pretty", "probably", "provided", "quite", "rather", "ready", "really", "required", "reset", "right", "safe", "same", "saved", "see", "set", "shared", "she", "short", "should", "shown", "simple", "since", "so", "some", "something", "sometimes", "soon", "sorry", "still", "stored", "strong", "stuck", "such", "sure", "take", "than", "thanks", "that", "the", "their", "them", "then", "there", "these", "they", "thing", "think", "this", "those", "though", "through", "to", "today", "too", "totally", "trying", "two", "under", "unique", "unsure", "until", "up", "updated", "us", "use", "used", "using", "very", "visible", "want", "wanted", "was", "way", "we", "weak", "well", "were", "what", "when", "where", "whether", "which", "while", "who", "why", "will", "with", "without", "working", "would", "wrong", "yes", "yet", "you", "your", "yours", "ability", "able", "absolutely", "accept", "accepted", "access", "according", "account", "accounts", "actual", "add", "added", "adding", "additional", "address", "admin", "advance", "advice", "after", "afternoon", "age", "ago", "agree", "ahead", "allow", "allowed", "alone", "along", "already", "although", "amazing", "amount", "anyway", "anywhere", "apparently", "app", "apply", "approved", "area", "arrived", "asked", "attached", "attempt", "automatically", "average", "aware", "awful", "bank", "based", "basic", "basically", "became", "become", "becomes", "begin", "beginning", "behind", "believe", "below", "beside", "besides", "between", "beyond", "blocked", "body", "book", "both", "bottom", "break", "bring", "broken", "brought", "build", "built", "busy", "call", "called", "calling", "came", "can't", "cannot", "care", "careful", "carefully", "cause", "caused", "certainly", "chance", "changes", "changing", "cheap", "checked", "choose", "chosen", "clear", "clearly", "click", "closed", "code", "coming", "common", "company", "complete", "completely", "complicated", "confirm", "confirmed", "considered", "contains", "continue", "control", "copied", "copy", "cost", "could", "couldn't", "country", "course", "create", "created", "current", "customer", "daily", "data", "date", "day", "days", "dead", "deal", "dear", "decided", "default", "definitely", "delete", "deleted", "described", "details", "device", "didn't", "difficult", "directly", "disabled", "does", "doesn't", "don't", "during", "earlier", "early", "easily", "effect", "eight", "eleven", "else", "email", "enabled", "end", "enter", "entered", "error", "especially", "etc", "evening", "event", "eventually", "everybody", "exact", "example", "excellent", "except", "expected", "expensive", "explain", "extra", "extremely", "fail", "failed", "fails", "failing", "fairly", "false", "family", "far", "fast", "feel", "few", "field", "file", "final", "finally", "find", "finished", "five", "fixed", "follow", "following", "forgot", "form", "forward", "four", "frequently", "friday", "friend", "friends", "fully", "funny", "further", "future", "general", "generally", "generated", "gets", "give", "gives", "giving", "goes", "gone", "gotten", "guess", "guys", "hand", "happen", "happened", "happens", "hardly", "hashed", "hate", "having", "hello", "help", "helpful", "hence", "hidden", "hide", "hmm", "hold", "hope", "hour", "hours", "house", "huge", "idea", "ignore", "immediately", "important", "impossible", "include", "included", "including", "indeed", "info", "information", "inside", "instance", "instructions", "into", "isn't", "issue", "issues", "itself", "job", "july", "june", "keeps", "kept", "key", "kinda", "knew", "know", "later", "latest", "least", "leave", "left", "length", "letter", "level", "life", "limit", "line", "link", "list", "literally", "live", "local", "locked", "login", "long", "longer", "look", "looked", "looks", "loose", "lots", "love", "lower", "main", "mainly", "making", "manager", "manual", "mark", "matter", "maybe", "meaning", "means", "meant", "meet", "message", "method", "middle", "minimum", "minute", "minutes", "missing", "mistake", "modern", "moment", "monday", "money", "month", "months", "morning", "mostly", "move", "moved", "multiple", "myself", "name", "names", "near", "nearly", "necessary", "needs", "neither", "network", "nobody", "none", "normally", "note", "notice", "noticed", "number", "numbers", "obviously", "ok", "once", "online", "only", "onto", "order", "original", "otherwise", "ours", "ourselves", "outside", "page", "paid", "particular", "pass", "passed", "password", "passwords", "past", "people", "per", "perfect", "perhaps", "person", "phone", "pick", "place", "plain", "plan", "point", "policy", "possible", "possibly", "post", "practically", "pretty", "previous", "previously", "print", "printed", "private", "problem", "problems", "process", "properly", "protected", "provide", "public", "purpose", "put", "question", "questions", "quick", "quickly", "random", "rarely", "rather", "reach", "read", "real", "reason", "received", "recent", "recently", "record", "recommend", "recommended", "regular", "regularly", "remember", "remove", "removed", "replaced", "request", "requested", "require", "requirements", "requires", "reset", "respect", "rest", "result", "return", "returned", "reuse", "reused", "rules", "run", "running", "said", "save", "say", "saying", "says", "screen", "second", "secure", "security", "seem", "seems", "seen", "send", "sending", "sensitive", "sent", "separate", "service", "session", "setting", "settings", "several", "share", "she'll", "shorter", "should've", "show", "showing", "shows", "sign", "signed", "similar", "simply", "since", "single", "site", "six", "slightly", "slow", "small", "somehow", "someone", "somewhere", "special", "specific", "spelled", "standard", "start", "started", "starts", "state", "stay", "step", "still", "stop", "stopped", "strange", "strength", "string", "strongly", "stuff", "suddenly", "suggest", "supposed", "surely", "system", "taken", "talk", "task", "team", "tell", "temporary", "ten", "terrible", "text", "than", "that's", "themselves", "there's", "therefore", "they're", "thing", "things", "third", "thought", "three", "time", "times", "tired", "told", "took", "top", "total", "tried", "true", "try", "turn", "turned", "twice", "type", "typed", "typically", "unable", "unless", "unfortunately", "unknown", "unlocked", "until", "upon", "urgent", "usual", "usually", "valid", "value", "various", "version", "via", "wait", "want", "wants", "wasn't", "watch", "way", "ways", "website", "week", "weeks", "weird", "went", "weren't", "what's", "whatever", "whenever", "where's", "whole", "whose", "wifi", "will", "within", "won't", "word", "words", "work", "worked", "works", "world", "worried", "worse", "worst", "write", "written", "wrong", "year", "years", "yesterday", "yet", "you'll", "you're", "you've"])
# fmt: on

# Occupations that, right after "I'm a", mark a professional asking about a
# topic rather than a person disclosing their own facts.
PROFESSIONS: frozenset[str] = frozenset(
    [
        "nurse",
        "doctor",
        "physician",
        "pharmacist",
        "therapist",
        "psychologist",
        "counselor",
        "counsellor",
        "teacher",
        "professor",
        "lecturer",
        "student",
        "researcher",
        "scientist",
        "journalist",
        "writer",
        "author",
        "developer",
        "engineer",
        "programmer",
        "designer",
        "accountant",
        "advisor",
        "adviser",
        "planner",
        "banker",
        "lawyer",
        "paralegal",
        "paramedic",
        "dentist",
        "hygienist",
        "dietitian",
        "nutritionist",
        "trainer",
        "coach",
        "consultant",
        "manager",
        "recruiter",
        "librarian",
        "social",
        "worker",
        "caregiver",
        "analyst",
        "auditor",
        "underwriter",
    ]
)
