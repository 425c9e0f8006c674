"""Random but well-formed personal values for the synthetic training corpus.

Every identifier with a check digit is generated valid (Luhn, mod-97, ABA,
Verhoeff, mod-11) unless the caller asks for an invalid one, because the
model must learn that validity matters. Name and place pools are written
for this project; a share of names is synthesised from syllables so the
model cannot lean on a memorised list.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Sequence
from typing import TypeVar

from .patterns import IBAN_LENGTHS, luhn_valid

T = TypeVar("T")

# fmt: off
FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Mateo", "Isabella", "Lucas",
    "Mia", "Levi", "Amelia", "Ezra", "Harper", "Asher", "Evelyn", "Leo", "Abigail", "Hudson",
    "Ella", "Grayson", "Scarlett", "Owen", "Aria", "Jaxon", "Chloe", "Wyatt", "Nora", "Caleb",
    "Hazel", "Isaac", "Aurora", "Miles", "Stella", "Julian", "Violet", "Nathan", "Penelope",
    "Rowan", "Brooke", "Declan", "Tessa", "Malik", "Imani", "Deshawn", "Tamika", "Jerome",
    "Aaliyah", "Marcus", "Keanu", "Leilani", "Priya", "Arjun", "Ananya", "Ishaan", "Meera",
    "Rohit", "Kavitha", "Sanjay", "Lakshmi", "Vikram", "Fatima", "Omar", "Yusuf", "Layla",
    "Karim", "Nour", "Samira", "Tariq", "Zainab", "Bilal", "Wei", "Jing", "Hao", "Mei", "Chen",
    "Xiu", "Jun", "Ling", "Hiroshi", "Yumi", "Kenta", "Aiko", "Sora", "Minjun", "Jiwoo",
    "Seoyeon", "Dong-hyun", "Thanh", "Linh", "Quang", "Nguyet", "Carlos", "Lucia", "Alejandro",
    "Valentina", "Diego", "Camila", "Javier", "Paula", "Andres", "Ximena", "Rafael", "Beatriz",
    "Joao", "Mariana", "Tiago", "Ines", "Giulia", "Lorenzo", "Chiara", "Matteo", "Federica",
    "Pietro", "Elodie", "Mathis", "Camille", "Theo", "Manon", "Baptiste", "Lena", "Jonas",
    "Hannah", "Maximilian", "Katharina", "Florian", "Ingrid", "Soren", "Freya", "Nils", "Astrid",
    "Pekka", "Aino", "Katarzyna", "Piotr", "Zofia", "Bartosz", "Oksana", "Dmytro", "Irina",
    "Alexei", "Ngozi", "Chukwuemeka", "Adaeze", "Kwabena", "Abena", "Thandiwe", "Sipho",
    "Amara", "Kofi", "Wanjiru", "Baraka", "Siobhan", "Cormac", "Aoife", "Eamon", "Niamh",
    "Rhys", "Cerys", "Dylan", "Morgan", "Ruth", "Harold", "Doris", "Walter", "Gloria", "Frank",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Okafor", "Mensah", "Adeyemi",
    "Kamau", "Ndlovu", "Diallo", "Haddad", "Khalil", "Rahman", "Siddiqui", "Hussain", "Patel",
    "Sharma", "Iyer", "Reddy", "Chatterjee", "Menon", "Kapoor", "Wang", "Zhang", "Liu", "Chen",
    "Huang", "Zhao", "Tanaka", "Suzuki", "Watanabe", "Kobayashi", "Kim", "Park", "Choi",
    "Tran", "Pham", "Le", "Silva", "Santos", "Oliveira", "Pereira", "Costa", "Ferreira",
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Dubois",
    "Lefebvre", "Moreau", "Laurent", "Girard", "Fontaine", "Muller", "Schmidt", "Schneider",
    "Fischer", "Weber", "Becker", "Hoffmann", "Wagner", "Kowalski", "Nowak", "Wisniewski",
    "Lewandowski", "Kovalenko", "Shevchenko", "Ivanova", "Petrov", "Johansson", "Lindqvist",
    "Nilsen", "Virtanen", "Korhonen", "O'Brien", "Murphy", "Kelly", "Byrne", "Walsh",
    "McCarthy", "Davies", "Evans", "Hughes", "Morgan", "van Dijk", "de Vries", "Jansen",
    "Bakker", "Visser", "Novak", "Horvat", "Popescu", "Papadopoulos", "Yilmaz", "Demir",
    "Cohen", "Levi", "Friedman", "Abramov", "MacLeod", "Fraser", "Sinclair", "Whitfield",
)
SYLLABLES_START = ("ka", "ma", "ta", "ri", "lo", "ze", "bra", "ni", "so", "ve", "da", "ju", "fe",
                   "ha", "or", "el", "an", "mi", "to", "sa", "ke", "li", "do", "ra", "gu", "pe")
SYLLABLES_END = ("lin", "ra", "to", "vik", "na", "ston", "mer", "dez", "ko", "son", "ley", "ri",
                 "nova", "ssen", "berg", "wick", "zak", "lani", "dor", "mo", "eli", "quez")
STREET_NAMES = (
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Willow", "Birch", "Chestnut", "Walnut", "Hickory",
    "Lake", "Hill", "River", "Church", "Mill", "Station", "High", "King", "Queen", "Victoria",
    "Albert", "Washington", "Lincoln", "Jefferson", "Madison", "Franklin", "Jackson", "Market",
    "Union", "Spring", "Sunset", "Highland", "Meadow", "Forest", "Ridge", "Valley", "Orchard",
    "Garden", "Bridge", "Harbor", "Bay", "Ocean", "Prospect", "Pleasant", "Greenwood",
    "Fairview", "Riverside", "Lakeview", "Brookside", "Cherry", "Rosewood", "Ivy", "Magnolia",
    "Dogwood", "Aspen", "Sycamore", "Juniper", "Laurel", "Poplar", "Sherwood", "Kingsley",
    "Ashford", "Belmont", "Carlton", "Dover", "Everett", "Glenwood", "Hawthorn", "Kensington",
    "Marlborough", "Newport", "Oxford", "Preston", "Stanley", "Trinity", "Wellington", "Windsor",
    "Woodland", "Cypress", "Palmetto", "Canyon", "Mesa", "Saguaro", "Bluebonnet", "Tamarack",
    "Grant", "Cleveland", "Monroe", "Adams", "Hamilton", "Pearl", "Front", "Water", "Broad",
)
US_SUFFIXES = ("Street", "St", "Avenue", "Ave", "Road", "Rd", "Drive", "Dr", "Lane", "Ln",
               "Boulevard", "Blvd", "Court", "Ct", "Place", "Way", "Terrace", "Circle", "Parkway")
UK_SUFFIXES = ("Road", "Street", "Lane", "Close", "Avenue", "Crescent", "Gardens", "Grove",
               "Way", "Drive", "Mews", "Terrace", "Row", "Walk", "Hill")
US_CITIES = (
    ("Springfield", "IL"), ("Portland", "OR"), ("Austin", "TX"), ("Columbus", "OH"),
    ("Raleigh", "NC"), ("Boise", "ID"), ("Madison", "WI"), ("Tucson", "AZ"), ("Tampa", "FL"),
    ("Denver", "CO"), ("Richmond", "VA"), ("Albany", "NY"), ("Fresno", "CA"),
    ("Oakland", "CA"), ("Omaha", "NE"), ("Tulsa", "OK"), ("Knoxville", "TN"),
    ("Savannah", "GA"), ("Spokane", "WA"), ("Lansing", "MI"), ("Dayton", "OH"),
    ("Provo", "UT"), ("Reno", "NV"), ("Burlington", "VT"), ("Duluth", "MN"), ("Mobile", "AL"),
    ("Lexington", "KY"), ("Hartford", "CT"), ("Newark", "NJ"), ("Scranton", "PA"),
)
UK_TOWNS = ("Leeds", "Bristol", "Norwich", "Exeter", "York", "Derby", "Bath", "Cardiff",
            "Sheffield", "Brighton", "Reading", "Swindon", "Ipswich", "Leicester", "Durham")
DE_CITIES = (("Berlin", "10"), ("Hamburg", "20"), ("München", "80"), ("Köln", "50"),
             ("Leipzig", "04"), ("Dresden", "01"), ("Stuttgart", "70"), ("Bremen", "28"))
FR_CITIES = (("Paris", "75"), ("Lyon", "69"), ("Marseille", "13"), ("Toulouse", "31"),
             ("Nantes", "44"), ("Lille", "59"), ("Bordeaux", "33"), ("Rennes", "35"))
ES_CITIES = ("Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga", "Zaragoza")
IT_CITIES = ("Roma", "Milano", "Torino", "Bologna", "Firenze", "Napoli", "Verona", "Genova")
NL_CITIES = ("Amsterdam", "Utrecht", "Rotterdam", "Leiden", "Groningen", "Eindhoven")
CA_CITIES = (("Toronto", "ON", "M"), ("Ottawa", "ON", "K"), ("Vancouver", "BC", "V"),
             ("Calgary", "AB", "T"), ("Halifax", "NS", "B"), ("Montreal", "QC", "H"))
AU_CITIES = (("Sydney", "NSW", "2"), ("Melbourne", "VIC", "3"), ("Brisbane", "QLD", "4"),
             ("Perth", "WA", "6"), ("Adelaide", "SA", "5"), ("Hobart", "TAS", "7"))
IN_CITIES = (("Bengaluru", "560"), ("Mumbai", "400"), ("Pune", "411"), ("Chennai", "600"),
             ("Hyderabad", "500"), ("Delhi", "110"), ("Kochi", "682"))
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                 "proton.me", "protonmail.com", "aol.com", "gmx.de", "web.de", "orange.fr",
                 "libero.it", "yandex.ru", "qq.com", "mail.com", "fastmail.com", "live.co.uk",
                 "btinternet.com", "comcast.net", "me.com", "rediffmail.com", "naver.com")
COMPANY_WORDS = ("northwind", "bluepeak", "harborline", "quantix", "redleaf", "solara",
                 "brightpath", "ironclad", "pinecrest", "veritas", "lumen", "copperfield",
                 "atlasgrid", "kestrel", "meridian", "novatek", "silverline", "tidewater")
EMPLOYERS = ("St. Mary's Hospital", "Lakeside Elementary", "the county library", "Walmart",
             "a small dental practice", "Riverside Credit Union", "the Amazon warehouse",
             "Lincoln High School", "a law firm downtown", "the city water department",
             "Deloitte", "a local bakery", "Mercy General", "the Ford plant",
             "Greenfield Pharmacy", "the university hospital", "a startup called Brightpath")
JOBS = ("nurse", "teacher", "accountant", "software engineer", "paralegal", "electrician",
        "pharmacist", "warehouse associate", "dental hygienist", "bus driver", "barista",
        "social worker", "sales rep", "data analyst", "line cook", "police officer",
        "graphic designer", "HR manager", "truck driver", "physiotherapist")
# fmt: on


class Values:
    """Factories for synthetic personal values; all randomness comes from `rng`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # -- helpers --------------------------------------------------------
    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.rng.randrange(len(seq))]

    def digits(self, n: int, first_nonzero: bool = False) -> str:
        out = [str(self.rng.randrange(10)) for _ in range(n)]
        if first_nonzero and out:
            out[0] = str(self.rng.randrange(1, 10))
        return "".join(out)

    def letters(self, n: int, upper: bool = True) -> str:
        pool = string.ascii_uppercase if upper else string.ascii_lowercase
        return "".join(self.choice(pool) for _ in range(n))

    def alnum(self, n: int, pool: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(self.choice(pool) for _ in range(n))

    # -- names and contact ----------------------------------------------
    def first_name(self) -> str:
        if self.rng.random() < 0.25:
            return (self.choice(SYLLABLES_START) + self.choice(SYLLABLES_END)).capitalize()
        return self.choice(FIRST_NAMES)

    def last_name(self) -> str:
        if self.rng.random() < 0.25:
            name = self.choice(SYLLABLES_START) + self.choice(SYLLABLES_END)
            if self.rng.random() < 0.5:
                name += self.choice(SYLLABLES_END)
            return name.capitalize()
        return self.choice(LAST_NAMES)

    def full_name(self) -> str:
        first, last = self.first_name(), self.last_name()
        if self.rng.random() < 0.12:
            return f"{first} {self.choice(string.ascii_uppercase)}. {last}"
        return f"{first} {last}"

    def email(self, name: str | None = None) -> str:
        name = name or self.full_name()
        parts = [p for p in name.lower().replace(".", "").replace("'", "").split() if p]
        first, last = parts[0], parts[-1].replace(" ", "")
        year = str(self.rng.randrange(1960, 2008))
        local = self.choice(
            (
                f"{first}.{last}",
                f"{first}{last}",
                f"{first[0]}{last}",
                f"{first}_{last}{self.digits(2)}",
                f"{first}{year[-2:]}",
                f"{last}.{first}",
                f"{first}.{last}{self.rng.randrange(1, 99)}",
                f"{first}{self.choice(('xo', 'x', 'the', 'real'))}{self.digits(3)}",
            )
        )
        local = "".join(c for c in local if c.isascii())
        if len(local) < 3:
            local += self.digits(3)
        if self.rng.random() < 0.2:
            domain = self.choice(COMPANY_WORDS) + self.choice((".com", ".io", ".co.uk", ".de", ".net"))
        else:
            domain = self.choice(EMAIL_DOMAINS)
        return f"{local}@{domain}"

    def phone(self) -> str:
        r = self.rng
        kind = r.randrange(17)
        d = self.digits
        area = str(r.randrange(201, 990))
        while area[1] == "9" or area in ("800", "888", "877", "866", "855", "844", "833"):
            area = str(r.randrange(201, 990))
        exch = str(r.randrange(201, 999))
        if exch == "555":
            exch = "556"
        if kind == 0:
            return f"({area}) {exch}-{d(4)}"
        if kind == 1:
            return f"{area}-{exch}-{d(4)}"
        if kind == 2:
            return f"+1 {area} {exch} {d(4)}"
        if kind == 3:
            return f"{area}.{exch}.{d(4)}"
        if kind == 4:
            return f"+44 7{d(3)} {d(6)}"
        if kind == 5:
            return f"07{d(3)} {d(6)}"
        if kind == 6:
            return f"+49 1{r.choice(('5', '6', '7'))}{d(1)} {d(7)}"
        if kind == 7:
            return f"0{r.choice(('6', '7'))} {d(2)} {d(2)} {d(2)} {d(2)}"
        if kind == 8:
            return f"+91 {r.choice(('9', '8', '7'))}{d(4)} {d(5)}"
        if kind == 9:
            return f"+61 4{d(2)} {d(3)} {d(3)}"
        if kind == 10:
            return f"+33 {r.choice(('6', '7'))} {d(2)} {d(2)} {d(2)} {d(2)}"
        if kind == 12:
            return f"{d(3, True)} {d(3)} {d(3)}"
        if kind == 13:
            return f"{d(4, True)} {d(4)}"
        if kind == 14:
            return f"({d(2, True)}) {d(4)}-{d(4)}"
        if kind == 15:
            return f"0{d(2)} {d(3)} {d(2)} {d(2)}"
        if kind == 16:
            return f"{d(2, True)}-{d(2)}-{d(2)}-{d(2)}"
        return f"+{r.choice(('34', '39', '31', '55', '52', '81'))} {d(3)} {d(3)} {d(3)}"

    # -- places ---------------------------------------------------------
    def street_line(self) -> str:
        r = self.rng
        return f"{r.randrange(1, 9999)} {self.choice(STREET_NAMES)} {self.choice(US_SUFFIXES)}"

    def address(self) -> str:
        r = self.rng
        kind = r.randrange(11)
        name = self.choice(STREET_NAMES)
        if kind == 10:
            # US military mail: a unit or ship line, then APO/FPO/DPO, a region code and a ZIP.
            sep = self.choice((", ", "\n", " "))
            first = self.choice(
                (
                    f"PSC {self.digits(4)}, Box {self.digits(4)}",
                    f"Unit {self.digits(4)} Box {self.digits(4)}",
                    f"CMR {self.digits(3)}, Box {self.digits(4)}",
                    f"USNS {self.choice(STREET_NAMES)}",
                    f"USS {self.choice(STREET_NAMES)}",
                )
            )
            post = self.choice(("APO", "FPO", "DPO"))
            region = self.choice(("AA", "AE", "AP"))
            return f"{first}{sep}{post} {region} {self.digits(5, first_nonzero=True)}"
        if kind == 9:
            # Street name first, number after, no English suffix (much of Europe).
            street = self.choice(("Mlynarska", "Kossuth Lajos utca", "Bergweg", "Vesterbrogade",
                                  "Kalevankatu", "Polna", "Dózsa György út", "Rua Augusta",
                                  "Nowy Świat", "Storgatan", "Karl Johans gate", "Nádražní",
                                  "Drottninggatan", "Ilica", "Vitosha", "Strada Lipscani"))  # fmt: skip
            city = self.choice(("Kraków", "Budapest", "Brno", "Oslo", "Helsinki", "Porto",
                                "Zagreb", "Sofia", "Göteborg", "Aarhus"))  # fmt: skip
            return f"{street} {r.randrange(1, 200)}, {self.digits(2)}-{self.digits(3)} {city}"
        if kind in (0, 1, 2):
            city, state = self.choice(US_CITIES)
            unit = f", Apt {r.randrange(1, 40)}{self.choice('ABCD')}" if r.random() < 0.3 else ""
            zip_code = self.digits(5, first_nonzero=True)
            return (
                f"{r.randrange(1, 9999)} {name} {self.choice(US_SUFFIXES)}{unit}, {city}, {state} {zip_code}"
            )
        if kind == 3:
            town = self.choice(UK_TOWNS)
            postcode = f"{self.letters(2)}{r.randrange(1, 20)} {r.randrange(1, 9)}{self.letters(2)}"
            return f"{r.randrange(1, 200)} {name} {self.choice(UK_SUFFIXES)}, {town} {postcode}"
        if kind == 4:
            city, prefix = self.choice(DE_CITIES)
            street = self.choice(
                (
                    "Linden",
                    "Berliner",
                    "Garten",
                    "Schiller",
                    "Goethe",
                    "Bahnhof",
                    "Kirch",
                    "Ahorn",
                    "Rosen",
                    "Mühlen",
                )
            )
            suffix = self.choice(("straße", "str.", "weg", "allee", "gasse", "platz"))
            return f"{street}{suffix} {r.randrange(1, 150)}, {prefix}{self.digits(3)} {city}"
        if kind == 5:
            city, dep = self.choice(FR_CITIES)
            street = self.choice(
                (
                    "de la République",
                    "Victor Hugo",
                    "des Lilas",
                    "du Moulin",
                    "Pasteur",
                    "de la Gare",
                    "Jean Jaurès",
                )
            )
            kind_fr = self.choice(("rue", "avenue", "boulevard", "allée", "chemin"))
            return f"{r.randrange(1, 120)} {kind_fr} {street}, {dep}{self.digits(3)} {city}"
        if kind == 6:
            city = self.choice(ES_CITIES + IT_CITIES)
            word = self.choice(("Calle", "Avenida", "Via", "Viale", "Corso", "Piazza"))
            street = self.choice(
                ("Mayor", "Garibaldi", "Roma", "de Goya", "Cavour", "Verdi", "del Sol", "Mazzini", "Alcalá")
            )
            return f"{word} {street} {r.randrange(1, 200)}, {self.digits(5)} {city}"
        if kind == 7:
            city, prov, letter = self.choice(CA_CITIES)
            postal = (
                f"{letter}{r.randrange(10)}{self.letters(1)} "
                f"{r.randrange(10)}{self.letters(1)}{r.randrange(10)}"
            )
            suffix = self.choice(("Street", "Avenue", "Road", "Crescent"))
            return f"{r.randrange(1, 9999)} {name} {suffix}, {city}, {prov} {postal}"
        city, state, lead = self.choice(AU_CITIES)
        suffix = self.choice(("Street", "Road", "Parade", "Avenue"))
        return f"{r.randrange(1, 300)} {name} {suffix}, {city} {state} {lead}{self.digits(3)}"

    def gps(self) -> str:
        r = self.rng
        lat = r.uniform(-50, 60)
        lon = r.uniform(-120, 150)
        return f"{lat:.{r.randrange(4, 7)}f}, {lon:.{r.randrange(4, 7)}f}"

    # -- dates ----------------------------------------------------------
    def date_of_birth(self) -> str:
        r = self.rng
        year = r.randrange(1938, 2010)
        month = r.randrange(1, 13)
        day = r.randrange(1, 29)
        months = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")  # fmt: skip
        kind = r.randrange(7)
        if kind == 0:
            return f"{month:02d}/{day:02d}/{year}"
        if kind == 1:
            return f"{day:02d}/{month:02d}/{year}"
        if kind == 2:
            return f"{year}-{month:02d}-{day:02d}"
        if kind == 3:
            return f"{months[month - 1]} {day}, {year}"
        if kind == 4:
            return f"{day} {months[month - 1]} {year}"
        if kind == 5:
            return f"{day}.{month}.{year}"
        return f"{months[month - 1][:3]} {day} {year}"

    # -- government ids -------------------------------------------------
    def ssn(self, sep: str = "-") -> str:
        r = self.rng
        area = r.randrange(1, 900)
        while area == 666:
            area = r.randrange(1, 900)
        value = f"{area:03d}{r.randrange(1, 100):02d}{r.randrange(1, 10000):04d}"
        if value in ("123456789", "078051120"):
            value = "234567891"
        return f"{value[:3]}{sep}{value[3:5]}{sep}{value[5:]}"

    def invalid_ssn(self) -> str:
        r = self.rng
        kind = r.randrange(4)
        if kind == 0:
            return f"000-{r.randrange(10, 99)}-{self.digits(4)}"
        if kind == 1:
            return f"666-{r.randrange(10, 99)}-{self.digits(4)}"
        if kind == 2:
            return f"9{self.digits(2)}-{r.randrange(10, 99)}-{self.digits(4)}"
        return f"{r.randrange(100, 665)}-00-{self.digits(4)}"

    def passport(self) -> str:
        r = self.rng
        return (
            self.choice(
                (
                    self.digits(9, first_nonzero=True),
                    self.letters(1) + self.digits(8),
                    self.letters(2) + self.digits(7),
                    "C" + self.alnum(8),
                    self.letters(1) + self.digits(7),
                )
            )
            if r.random() < 0.99
            else self.digits(9)
        )

    def drivers_license(self) -> str:
        return self.choice(
            (
                self.letters(1) + self.digits(7),
                f"{self.letters(1)}{self.digits(3)}-{self.digits(4)}-{self.digits(4)}",
                self.digits(9),
                self.letters(5) + self.digits(6) + self.letters(2) + self.digits(1) + self.letters(2),
                f"{self.letters(1)}{self.digits(2)}-{self.digits(2)}-{self.digits(4)}",
            )
        )

    def tax_id(self) -> tuple[str, str]:
        """Return (label, value) for a tax identifier of some country."""
        r = self.rng
        kind = r.randrange(7)
        if kind == 0:
            return "EIN", f"{self.digits(2, True)}-{self.digits(7)}"
        if kind == 1:
            return "UTR", self.digits(10, True)
        if kind == 2:
            return "Steuer-ID", self.digits(11, True)
        if kind == 3:
            return "NIF", self.digits(8) + self.letters(1)
        if kind == 4:
            return "codice fiscale", self.letters(6) + self.digits(2) + self.letters(1) + self.digits(
                2
            ) + self.letters(1) + self.digits(3) + self.letters(1)
        if kind == 5:
            return "CPF", f"{self.digits(3)}.{self.digits(3)}.{self.digits(3)}-{self.digits(2)}"
        return "TFN", f"{self.digits(3)} {self.digits(3)} {self.digits(3)}"

    def itin(self, sep: str = "-") -> str:
        """Return an IRS individual taxpayer number: 9XX, group 50-65/70-88/90-92/94-99."""
        r = self.rng
        group = r.choice((*range(50, 66), *range(70, 89), 90, 91, 92, *range(94, 100)))
        return f"9{self.digits(2)}{sep}{group:02d}{sep}{self.digits(4)}"

    def nino(self) -> str:
        first = self.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = self.choice("ABCEGHJKLMNPRSTWXYZ")
        while first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            second = self.choice("ABCEGHJKLMNPRSTWXYZ")
        d = self.digits
        if self.rng.random() < 0.5:
            return f"{first}{second} {d(2)} {d(2)} {d(2)} {self.choice('ABCD')}"
        return f"{first}{second}{d(6)}{self.choice('ABCD')}"

    def sin(self) -> str:
        body = self.digits(8, first_nonzero=True)
        for check in range(10):
            if luhn_valid(body + str(check)):
                value = body + str(check)
                return f"{value[:3]} {value[3:6]} {value[6:]}"
        raise AssertionError("unreachable: one Luhn check digit always fits")

    def nhs_number(self) -> str:
        while True:
            body = self.digits(9, first_nonzero=True)
            total = sum(int(c) * (10 - i) for i, c in enumerate(body))
            check = 11 - total % 11
            check = 0 if check == 11 else check
            if check != 10:
                value = body + str(check)
                return f"{value[:3]} {value[3:6]} {value[6:]}"

    def aadhaar(self) -> str:
        from .patterns import _VERHOEFF_D, _VERHOEFF_P

        body = str(self.rng.randrange(2, 10)) + self.digits(10)
        for check in range(10):
            candidate = body + str(check)
            c = 0
            for i, char in enumerate(reversed(candidate)):
                c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(char)]]
            if c == 0:
                return f"{candidate[:4]} {candidate[4:8]} {candidate[8:]}"
        raise AssertionError("unreachable: one Verhoeff check digit always fits")

    # -- payment and banking -------------------------------------------
    def _luhn_complete(self, body: str) -> str:
        for check in range(10):
            if luhn_valid(body + str(check)):
                return body + str(check)
        raise AssertionError("unreachable")

    def card_number(self, formatted: bool = True) -> str:
        r = self.rng
        kind = r.randrange(6)
        if kind in (0, 1):
            digits = self._luhn_complete("4" + self.digits(14))
        elif kind == 2:
            digits = self._luhn_complete(str(r.randrange(51, 56)) + self.digits(13))
        elif kind == 3:
            digits = self._luhn_complete(self.choice(("34", "37")) + self.digits(12))
        elif kind == 4:
            digits = self._luhn_complete("6011" + self.digits(11))
        else:
            digits = self._luhn_complete(str(r.randrange(2221, 2721)) + self.digits(11))
        if not formatted or r.random() < 0.2:
            return digits
        sep = self.choice((" ", " ", "-"))
        if len(digits) == 15:
            return f"{digits[:4]}{sep}{digits[4:10]}{sep}{digits[10:]}"
        return sep.join(digits[i : i + 4] for i in range(0, 16, 4))

    def invalid_card_number(self) -> str:
        digits = self.card_number(formatted=False)
        last = (int(digits[-1]) + self.rng.randrange(1, 10)) % 10
        digits = digits[:-1] + str(last)
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))

    def expiry(self) -> str:
        return f"{self.rng.randrange(1, 13):02d}/{self.rng.randrange(25, 32)}"

    def cvv(self) -> str:
        return self.digits(3)

    def iban(self, formatted: bool | None = None) -> str:
        r = self.rng
        country = self.choice(("GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "PL",
                               "SE", "PT", "DK", "FI", "NO"))  # fmt: skip
        length = IBAN_LENGTHS[country]
        if country in ("GB", "IE"):
            bban = self.letters(4) + self.digits(length - 8)
        elif country == "NL":
            bban = self.letters(4) + self.digits(10)
        elif country == "IT":
            bban = self.letters(1) + self.digits(length - 5)
        else:
            bban = self.digits(length - 4)
        numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
        check = 98 - int(numeric) % 97
        value = f"{country}{check:02d}{bban}"
        if formatted is None:
            formatted = r.random() < 0.6
        if formatted:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def invalid_iban(self) -> str:
        value = self.iban(formatted=False)
        check = int(value[2:4])
        value = value[:2] + f"{(check + self.rng.randrange(1, 50)) % 97 + 2:02d}" + value[4:]
        return value

    def routing_number(self) -> str:
        body = self.digits(8, first_nonzero=False)
        body = "0" + body[1:] if self.rng.random() < 0.5 else "2" + body[1:]
        d = [int(c) for c in body]
        partial = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5]
        check = (10 - partial % 10) % 10
        return body + str(check)

    def account_number(self) -> str:
        return self.digits(self.rng.randrange(8, 13), first_nonzero=True)

    def sort_code(self) -> str:
        return f"{self.digits(2)}-{self.digits(2)}-{self.digits(2)}"

    def money(self, low: int = 200, high: int = 250_000) -> str:
        r = self.rng
        amount = r.randrange(low, high)
        kind = r.randrange(7)
        if kind == 0:
            return f"${amount:,}"
        if kind == 1:
            return f"£{amount:,}"
        if kind == 2:
            return f"€{amount:,}".replace(",", ".")
        if kind == 3 and amount >= 1000:
            return f"{round(amount / 1000)}k"
        if kind == 4:
            return f"{amount:,} dollars"
        if kind == 5:
            return f"${amount:,}.{self.digits(2)}"
        return f"${amount}"

    # -- secrets --------------------------------------------------------
    def password(self) -> str:
        r = self.rng
        words = ("sunshine", "dragon", "Tigers", "maple", "Falcon", "winter", "Bluebird",
                 "coffee", "Liverpool", "buster", "shadow", "Princess", "hunter", "Monkey")  # fmt: skip
        kind = r.randrange(5)
        if kind == 0:
            return self.choice(words) + self.digits(r.randrange(2, 5)) + self.choice("!@#$%&*?")
        if kind == 1:
            pool = string.ascii_letters + string.digits + "!@#$%^&*"
            return "".join(self.choice(pool) for _ in range(r.randrange(10, 18)))
        if kind == 2:
            leet = self.choice(words).replace("a", "@").replace("o", "0").replace("e", "3")
            return leet + self.digits(2)
        if kind == 3:
            return "-".join(self.choice(("correct", "horse", "battery", "staple", "orange",
                                         "river", "cloud", "piano", "tiger", "lemon"))
                            for _ in range(4))  # fmt: skip
        return self.choice(words).lower() + str(r.randrange(1960, 2020))

    def pin(self) -> str:
        return self.digits(self.choice((4, 4, 4, 6)))

    def otp(self) -> str:
        value = self.digits(6)
        return f"{value[:3]} {value[3:]}" if self.rng.random() < 0.25 else value

    def api_key(self) -> str:
        r = self.rng
        pool = string.ascii_letters + string.digits
        kind = r.randrange(9)
        if kind == 0:
            return "sk-" + self.choice(("", "proj-")) + self.alnum(r.randrange(32, 48), pool)
        if kind == 1:
            return "ghp_" + self.alnum(36, pool)
        if kind == 2:
            return "AKIA" + self.alnum(16, string.ascii_uppercase + string.digits)
        if kind == 3:
            return f"xoxb-{self.digits(11)}-{self.digits(12)}-{self.alnum(24, pool)}"
        if kind == 4:
            return "AIza" + self.alnum(35, pool + "_-")
        if kind == 5:
            return "sk_live_" + self.alnum(24, pool)
        if kind == 6:
            return "glpat-" + self.alnum(20, pool)
        if kind == 7:
            return "hf_" + self.alnum(34, pool)
        return self.alnum(r.randrange(32, 41), pool)

    def generic_token(self) -> str:
        pool = string.ascii_letters + string.digits
        return self.alnum(self.rng.randrange(24, 44), pool)

    def jwt(self) -> str:
        def b64(obj: dict) -> str:
            raw = json.dumps(obj, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        header = b64({"alg": self.choice(("HS256", "RS256")), "typ": "JWT"})
        payload = b64(
            {"sub": self.digits(8), "name": self.full_name(), "iat": 1700000000 + self.rng.randrange(10**7)}
        )
        signature = self.alnum(43, string.ascii_letters + string.digits + "-_")
        return f"{header}.{payload}.{signature}"

    def private_key_block(self) -> str:
        kind = self.choice(("RSA ", "EC ", "OPENSSH ", ""))
        pool = string.ascii_letters + string.digits + "+/"
        body = "\n".join(self.alnum(64, pool) for _ in range(self.rng.randrange(3, 7)))
        return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"

    # -- devices --------------------------------------------------------
    def imei(self, formatted: bool | None = None) -> str:
        tac = self.choice(("35", "86", "49", "01", "99")) + self.digits(6)
        digits = self._luhn_complete(tac + self.digits(6))
        if formatted is None:
            formatted = self.rng.random() < 0.3
        if formatted:
            return f"{digits[:2]}-{digits[2:8]}-{digits[8:14]}-{digits[14]}"
        return digits

    def mac(self) -> str:
        octets = [self.rng.randrange(256) for _ in range(6)]
        octets[0] &= 0xFE
        sep = self.choice((":", ":", "-"))
        value = sep.join(f"{o:02x}" for o in octets)
        return value.upper() if self.rng.random() < 0.5 else value

    def serial(self) -> str:
        return self.choice(
            (
                "C02" + self.alnum(9),
                self.alnum(7),
                "R58" + self.alnum(8),
                "SN" + self.digits(10),
                self.letters(3) + self.digits(6) + self.letters(2),
                f"{self.alnum(5)}-{self.alnum(5)}-{self.alnum(5)}",
            )
        )

    def public_ip(self) -> str:
        r = self.rng
        first = self.choice((24, 31, 45, 62, 73, 81, 89, 98, 104, 142, 151, 176, 185, 212, 217))
        return f"{first}.{r.randrange(0, 256)}.{r.randrange(0, 256)}.{r.randrange(1, 255)}"

    def vin(self) -> str:
        return self.alnum(17, "ABCDEFGHJKLMNPRSTUVWXYZ0123456789")

    def android_id(self) -> str:
        return self.alnum(16, "0123456789abcdef")
