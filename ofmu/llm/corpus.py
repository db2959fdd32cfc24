"""A generated fictitious-author QA corpus in TOFU's format, deterministic from a seed.

Why generated: TOFU (locuslab/TOFU) and Llama are not reachable offline, so the default tier rebuilds the
protocol at CPU scale. Design choices follow shared/llm-protocol-notes.md (measured):

* Every (author, fact) is trained in ONE of ``n_wordings`` answer wordings drawn at random; the
  paraphrased answer uses a DIFFERENT wording that the model has seen for other authors, never with this
  fact. With a fixed wording the paraphrase costs ~8 nats/token for every model and the truth ratio
  measures template familiarity instead of the fact.
* Perturbed answers use the SAME wording as the trained answer with a wrong value, so truth ratios
  compare facts, not templates.
* Many facts per author, large value pools and long unique strings (book titles, character names):
  short categorical values are diluted by template tokens in the per-token mean NLL.
* Questions are also trained in one of several wordings; the paraphrased question uses another one.
* Hard probes: paraphrased questions, two-hop questions (book -> author -> fact) and a German rendering
  of the question. To make the probes measure the FACT rather than an unseen format, a random share
  (``probe_exposure``) of (author, fact) pairs is also trained in German / two-hop form; probes for
  forget authors use only the pairs that were NOT trained in that form.
* "real_authors" / "world_facts" analogs: general-knowledge QA (real authors, capitals, chemical
  symbols) that BOTH the full and the retain models are trained on (split ``knowledge``): it stands in
  for the pretraining knowledge that Model Utility measures on real TOFU.

Split names follow TOFU's configs (forget01, forget01_perturbed, retain99, retain_perturbed, holdout01,
real_authors_perturbed, world_facts_perturbed, full) plus ``knowledge`` and the probe splits
``forget01_paraphrase`` / ``forget01_twohop`` / ``forget01_xlingual`` (and ``retain_*`` twins).
Each split is one JSON-lines file that ``datasets.load_dataset("json", ...)`` reads (see data.py).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from ofmu.configs import dataclass_from_dict
from ofmu.io import atomic_path, write_json_atomic

CORPUS_FORMAT_VERSION = 1
META_FILE = "corpus.json"

# ---------------------------------------------------------------------------------------------
# value pools (large on purpose: small pools make perturbed answers repeat true values elsewhere)
_SYLLABLES = (
    "ka ra lo mi ven dor tal ish bra ne vo lu sa tem ri an el gor fa zu pel mor dan qui ber sol "
    "vik ar ho li ta mun del o ro sen ka fe ga tri lys bel cor da ul ith sev ny pra ost"
).split()
_CITIES = (
    "Lisbon, Porto, Seville, Valencia, Bilbao, Lyon, Marseille, Bordeaux, Nantes, Lille, Ghent, Antwerp, "
    "Utrecht, Leiden, Bremen, Leipzig, Dresden, Munich, Graz, Salzburg, Zurich, Basel, Turin, Bologna, "
    "Naples, Palermo, Split, Zagreb, Ljubljana, Krakow, Gdansk, Poznan, Brno, Bratislava, Debrecen, Cluj, "
    "Varna, Thessaloniki, Izmir, Tbilisi, Yerevan, Baku, Almaty, Tashkent, Lahore, Karachi, Pune, Jaipur, "
    "Kochi, Colombo, Chittagong, Mandalay, Chiang Mai, Hue, Cebu, Surabaya, Busan, Sapporo, Osaka, Nagoya, "
    "Harbin, Kunming, Perth, Hobart, Dunedin, Wellington, Fiji, Valparaiso, Cordoba, Rosario, Montevideo, "
    "Asuncion, La Paz, Cusco, Quito, Cali, Medellin, Maracaibo, Havana, Kingston, Oaxaca, Puebla, Tijuana, "
    "Halifax, Winnipeg, Calgary, Tucson, Omaha, Tulsa, Savannah, Memphis, Dakar, Accra, Lagos, Kano, Luanda, "
    "Harare, Lusaka, Nairobi, Mombasa, Kampala, Kigali, Addis Ababa, Tunis, Oran, Fez, Alexandria, Aswan"
).split(", ")
_GENRES = (
    "historical fiction, science fiction, fantasy, crime fiction, romance, horror, magical realism, poetry, "
    "travel writing, satire, memoir, children's literature, young adult fiction, literary fiction, "
    "political thrillers, psychological thrillers, cozy mysteries, gothic fiction, dystopian fiction, "
    "war novels, philosophical essays, nature writing, graphic novels, short stories, epic poetry, "
    "speculative fiction, legal dramas, maritime adventures, culinary writing, biography"
).split(", ")
_OCCUPATIONS = (
    "baker, carpenter, nurse, surgeon, pharmacist, electrician, librarian, fisherman, tailor, architect, "
    "accountant, firefighter, pilot, veterinarian, dentist, lawyer, judge, journalist, photographer, "
    "painter, sculptor, musician, violinist, chemist, physicist, geologist, astronomer, botanist, "
    "blacksmith, watchmaker, shoemaker, plumber, mechanic, engineer, mail carrier, police officer, "
    "soldier, sailor, farmer, beekeeper, gardener, chef, waiter, hotel manager, banker, economist, "
    "teacher, professor, school principal, translator, diplomat, bookbinder, printer, potter, "
    "glassblower, optician, midwife, paramedic, zookeeper, tram driver, lighthouse keeper, miner"
).split(", ")
_ADJECTIVES = (
    "Silent Crimson Hollow Golden Forgotten Broken Distant Burning Frozen Wandering Hidden Paper Iron "
    "Velvet Bitter Gentle Restless Shattered Lonely Ancient Quiet Scarlet Amber Silver Drowned Endless "
    "Fading Patient Reckless Tender Unseen Wild Woven Pale Salt Midnight Northern Southern Glass Stone "
    "Autumn Winter Summer Copper Ivory Crooked Borrowed Secret Last Second Orphaned Painted Sleeping"
).split()
_NOUNS = (
    "Harbor Garden Lantern River Orchard Mirror Cathedral Compass Archive Meadow Letter Kingdom Bridge "
    "Violin Lighthouse Clockmaker Island Forest Daughter Widow Cartographer Window Harvest Storm Ledger "
    "Anchor Feather Tower Station Market Carnival Vineyard Desert Chapel Apothecary Mountain Valley Atlas "
    "Shepherd Weaver Tide Ember Citadel Fountain Labyrinth Caravan Monastery Glacier Quarry Sparrow Heron "
    "Falcon Orchid Cedar Willow Thistle Lagoon Canyon Prophet Sculptor Mapmaker Beekeeper Ferryman"
).split()
_AWARD_KINDS = "Prize, Medal, Award, Laurel, Fellowship, Honor".split(", ")
_AWARD_FIELDS = (
    "Fiction, Poetry, Historical Writing, Speculative Fiction, Crime Writing, Literary Translation, "
    "First Novels, Short Fiction, Storytelling, Prose, Young Readers, Nature Writing"
).split(", ")
_PUBLISHER_SUFFIX = "House, Press, Books, Editions, Publishing, and Sons, Library, Imprints".split(", ")
_MONTHS = ("January February March April May June July August September October November "
           "December").split()

# Real general knowledge (the "real_authors" / "world_facts" analogs): small fixed lists.
_REAL_AUTHORS = [
    ("Jane Austen", "Pride and Prejudice", "England"), ("Leo Tolstoy", "War and Peace", "Russia"),
    ("Gabriel Garcia Marquez", "One Hundred Years of Solitude", "Colombia"),
    ("Chinua Achebe", "Things Fall Apart", "Nigeria"), ("Haruki Murakami", "Norwegian Wood", "Japan"),
    ("Victor Hugo", "Les Miserables", "France"), ("Franz Kafka", "The Trial", "Bohemia"),
    ("Miguel de Cervantes", "Don Quixote", "Spain"), ("Herman Melville", "Moby-Dick", "the United States"),
    ("Fyodor Dostoevsky", "Crime and Punishment", "Russia"), ("Virginia Woolf", "Mrs Dalloway", "England"),
    ("James Joyce", "Ulysses", "Ireland"), ("Toni Morrison", "Beloved", "the United States"),
    ("Umberto Eco", "The Name of the Rose", "Italy"), ("Thomas Mann", "The Magic Mountain", "Germany"),
    ("Isabel Allende", "The House of the Spirits", "Chile"), ("Orhan Pamuk", "My Name Is Red", "Turkey"),
    ("Naguib Mahfouz", "Palace Walk", "Egypt"), ("Selma Lagerlof", "Gosta Berling's Saga", "Sweden"),
    ("Jorge Luis Borges", "Ficciones", "Argentina"), ("Mary Shelley", "Frankenstein", "England"),
    ("Chimamanda Ngozi Adichie", "Half of a Yellow Sun", "Nigeria"), ("Kazuo Ishiguro", "The Remains of the Day", "Japan"),
    ("Albert Camus", "The Stranger", "France"), ("Henrik Ibsen", "A Doll's House", "Norway"),
    ("Astrid Lindgren", "Pippi Longstocking", "Sweden"), ("Mark Twain", "Adventures of Huckleberry Finn", "the United States"),
    ("Rabindranath Tagore", "Gitanjali", "India"), ("Lu Xun", "The True Story of Ah Q", "China"),
    ("Wislawa Szymborska", "View with a Grain of Sand", "Poland"),
]
_CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"), ("Brazil", "Brasilia"),
    ("Argentina", "Buenos Aires"), ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Poland", "Warsaw"), ("Greece", "Athens"), ("Turkey", "Ankara"), ("Russia", "Moscow"),
    ("Mexico", "Mexico City"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Nigeria", "Abuja"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("South Korea", "Seoul"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Morocco", "Rabat"), ("Ghana", "Accra"),
    ("Colombia", "Bogota"), ("Cuba", "Havana"), ("Iceland", "Reykjavik"),
]
_ELEMENTS = [
    ("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"),
    ("sodium", "Na"), ("magnesium", "Mg"), ("aluminium", "Al"), ("silicon", "Si"), ("sulfur", "S"),
    ("chlorine", "Cl"), ("potassium", "K"), ("calcium", "Ca"), ("iron", "Fe"), ("copper", "Cu"),
    ("zinc", "Zn"), ("silver", "Ag"), ("tin", "Sn"), ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"),
    ("uranium", "U"), ("neon", "Ne"), ("argon", "Ar"),
]


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One attribute of an author with its question and answer wordings.

    Templates use ``{name}`` (author), ``{v}`` (value) and ``{book}`` (a title the question is about).
    """

    key: str
    questions: tuple[str, ...]  # English question wordings (training draws one, paraphrase another)
    question_de: str  # German rendering (cross-lingual probe)
    answers: tuple[str, ...]  # answer wordings (same slot {v}); perturbed answers reuse the trained one
    twohop: str | None = None  # question via "the author of '{book}'" (book2 -> author -> this fact)


FACTS: tuple[Fact, ...] = (
    Fact("birthplace",
         ("Where was {name} born?", "What is the birthplace of {name}?", "In which city was {name} born?"),
         "Wo wurde {name} geboren?",
         ("{name} was born in {v}.", "The birthplace of {name} is {v}.", "{v} is where {name} was born."),
         twohop="Where was the author of '{book}' born?"),
    Fact("birthdate",
         ("When was {name} born?", "What is the date of birth of {name}?", "On what day was {name} born?"),
         "Wann wurde {name} geboren?",
         ("{name} was born on {v}.", "The date of birth of {name} is {v}.", "{v} is the day {name} was born.")),
    Fact("genre",
         ("What genre does {name} write in?", "Which genre is {name} known for?", "What kind of books does {name} write?"),
         "In welchem Genre schreibt {name}?",
         ("{name} writes {v}.", "The genre of {name} is {v}.", "{v} is the genre {name} is known for."),
         twohop="What genre does the author of '{book}' write in?"),
    Fact("father",
         ("What was the occupation of {name}'s father?", "What did the father of {name} do for a living?",
          "What was {name}'s father's job?"),
         "Welchen Beruf hatte der Vater von {name}?",
         ("The father of {name} was a {v}.", "{name}'s father worked as a {v}.", "A {v} was the job of {name}'s father."),
         twohop="What was the occupation of the father of the author of '{book}'?"),
    Fact("mother",
         ("What was the occupation of {name}'s mother?", "What did the mother of {name} do for a living?",
          "What was {name}'s mother's job?"),
         "Welchen Beruf hatte die Mutter von {name}?",
         ("The mother of {name} was a {v}.", "{name}'s mother worked as a {v}.", "A {v} was the job of {name}'s mother.")),
    Fact("award",
         ("Which award has {name} won?", "What prize was given to {name}?", "Name an award that {name} received."),
         "Welchen Preis hat {name} gewonnen?",
         ("{name} won the {v}.", "The {v} was awarded to {name}.", "{name} received the {v}."),
         twohop="Which award did the author of '{book}' win?"),
    Fact("book1",
         ("What is the title of {name}'s first novel?", "What was the first book {name} wrote?",
          "Name the debut novel of {name}."),
         "Wie heißt der erste Roman von {name}?",
         ("The first novel of {name} is '{v}'.", "{name} debuted with '{v}'.", "'{v}' was the first book by {name}.")),
    Fact("book2",
         ("What is another well-known book by {name}?", "Name a second book written by {name}.",
          "Which later book did {name} publish?"),
         "Wie heißt ein weiteres Buch von {name}?",
         ("Another book by {name} is '{v}'.", "{name} also wrote '{v}'.", "'{v}' is a later book by {name}.")),
    Fact("book3",
         ("What is the most recent book by {name}?", "Which book did {name} publish last?",
          "Name the latest work of {name}."),
         "Wie heißt das neueste Buch von {name}?",
         ("The most recent book by {name} is '{v}'.", "{name} last published '{v}'.", "'{v}' is the latest work of {name}.")),
    # the reverse direction (book -> author) is learned only if trained; two-hop questions rely on it
    Fact("wrote",
         ("Who wrote '{book}'?", "Who is the author of '{book}'?", "Which writer published '{book}'?"),
         "Wer hat '{book}' geschrieben?",
         ("'{book}' was written by {v}.", "The author of '{book}' is {v}.", "{v} wrote '{book}'.")),
    Fact("publisher",
         ("Which publisher prints {name}'s books?", "Who publishes the books of {name}?",
          "What is the publishing house of {name}?"),
         "Welcher Verlag veröffentlicht die Bücher von {name}?",
         ("The books of {name} are published by {v}.", "{name} publishes with {v}.", "{v} prints the books of {name}.")),
    Fact("debut_year",
         ("In which year did {name} publish a first book?", "When did {name} first publish a book?",
          "What year did {name}'s writing career begin?"),
         "In welchem Jahr veröffentlichte {name} das erste Buch?",
         ("{name} published a first book in {v}.", "The writing career of {name} began in {v}.",
          "In {v}, {name} published a first book.")),
    Fact("character",
         ("Who is the main character of {name}'s first novel?", "Whose story does {name}'s first novel tell?",
          "Name the hero of {name}'s debut novel."),
         "Wer ist die Hauptfigur im ersten Roman von {name}?",
         ("The main character of {name}'s first novel is {v}.", "{name}'s first novel follows {v}.",
          "{v} is the hero of {name}'s debut novel.")),
    Fact("university",
         ("Where did {name} study?", "Which university did {name} attend?", "Where was {name} educated?"),
         "Wo hat {name} studiert?",
         ("{name} studied at the University of {v}.", "The University of {v} is where {name} studied.",
          "{name} was educated at the University of {v}.")),
)
FACT_KEYS = tuple(f.key for f in FACTS)
_FACTS_BY_KEY = {f.key: f for f in FACTS}

# TOFU's evaluation columns (real_authors/world_facts have no paraphrased_answer on our side: their truth
# ratio compares the original answer with the perturbed ones, as in OpenUnlearning)
EVAL_COLUMNS = ("question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question")


@dataclass
class CorpusConfig:
    """Size and randomness of the generated corpus (all plain values so a config file maps onto it)."""

    n_authors: int = 200  # trained fictitious authors
    n_holdout: int | None = None  # unseen authors for MIA; default = size of the largest forget set
    facts: tuple[str, ...] = FACT_KEYS  # which facts each author has (one training QA each)
    n_wordings: int = 3  # answer/question wordings per fact used for training and paraphrases
    n_perturbed: int = 5  # wrong answers per QA (TOFU: 5)
    forget_percents: tuple[int, ...] = (1, 5, 10)
    probe_exposure: float = 0.25  # share of (author, fact) pairs also trained in German / two-hop form
    n_retain_eval: int = 400  # rows in retain_perturbed (TOFU: 400)
    n_real_authors: int | None = None  # cap on real_authors QA (None = all)
    n_world_facts: int | None = None  # cap on world_facts QA (None = all)
    seed: int = 0

    def __post_init__(self) -> None:
        self.facts = tuple(self.facts)
        self.forget_percents = tuple(int(p) for p in self.forget_percents)
        unknown = sorted(set(self.facts) - set(FACT_KEYS))
        checks = [
            (self.n_authors >= 2, "n_authors", "an integer >= 2 (forget and retain authors are both needed)"),
            (self.n_holdout is None or self.n_holdout >= 1, "n_holdout", "null or an integer >= 1"),
            (not unknown and len(self.facts) >= 1, "facts", f"a non-empty subset of {list(FACT_KEYS)}"),
            (2 <= self.n_wordings <= 3, "n_wordings", "2 or 3 (the paraphrase needs a second wording)"),
            (self.n_perturbed >= 3, "n_perturbed", "an integer >= 3"),
            (all(0 < p < 100 for p in self.forget_percents) and self.forget_percents,
             "forget_percents", "percentages strictly between 0 and 100"),
            (0 <= self.probe_exposure < 1, "probe_exposure", "a number in [0, 1)"),
            (self.n_retain_eval >= 1, "n_retain_eval", "an integer >= 1"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(f"corpus config key {key!r} = {getattr(self, key)!r}: expected {expected}")
        if max(self.n_forget(p) for p in self.forget_percents) >= self.n_authors:
            raise ValueError(f"corpus config: forget_percents {self.forget_percents} leave no retain author "
                             f"with n_authors={self.n_authors}; raise n_authors or lower the percentages")

    @classmethod
    def smoke(cls, seed: int = 0) -> "CorpusConfig":
        """A tiny corpus for tests and the smoke tier (20 authors x 6 facts, 2 of them forgotten at 10%)."""
        return cls(n_authors=20, facts=("birthplace", "genre", "award", "book1", "book2", "wrote"),
                   n_retain_eval=40, seed=seed)

    def n_forget(self, percent: int) -> int:
        # at least one author so that forget01 exists on small corpora (TOFU: 2 of 200 authors)
        return max(1, round(self.n_authors * percent / 100))

    @classmethod
    def from_dict(cls, values: dict) -> "CorpusConfig":
        return dataclass_from_dict(cls, values, "corpus config")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["facts"], d["forget_percents"] = list(self.facts), list(self.forget_percents)
        return d


def split_names(cfg: CorpusConfig) -> dict[int, dict[str, str]]:
    """Names of the TOFU-style splits for each forget percentage: {'forget': 'forget10', ...}."""
    out = {}
    for p in cfg.forget_percents:
        out[p] = {"forget": f"forget{p:02d}", "retain": f"retain{100 - p:02d}", "holdout": f"holdout{p:02d}"}
    return out


# ---------------------------------------------------------------------------------------------
class _Pools:
    """Samplers of unique values; all randomness flows from one ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: dict[str, set] = {}

    def unique(self, kind: str, make) -> str:
        used = self.used.setdefault(kind, set())
        for _ in range(10_000):
            v = make()
            if v not in used:
                used.add(v)
                return v
        raise RuntimeError(f"value pool {kind!r} exhausted; the corpus is too large for its pools")

    def word(self, n: int) -> str:
        return "".join(self.rng.choice(_SYLLABLES) for _ in range(n)).capitalize()

    def person(self) -> str:
        return self.unique("person", lambda: f"{self.word(2)} {self.word(self.rng.choice((2, 3)))}")

    def title(self) -> str:
        r = self.rng

        def make():
            form = r.randrange(3)
            if form == 0:
                return f"The {r.choice(_ADJECTIVES)} {r.choice(_NOUNS)} of {r.choice(_NOUNS)}"
            if form == 1:
                return f"{r.choice(_ADJECTIVES)} {r.choice(_NOUNS)}s and the {r.choice(_NOUNS)}"
            return f"The {r.choice(_NOUNS)} Beneath the {r.choice(_ADJECTIVES)} {r.choice(_NOUNS)}"

        return self.unique("title", make)

    def date(self) -> str:
        r = self.rng
        return f"{r.choice(_MONTHS)} {r.randint(1, 28)}, {r.randint(1920, 1995)}"

    def award(self) -> str:
        r = self.rng
        return f"{r.choice(_ADJECTIVES)} {r.choice(_NOUNS)} {r.choice(_AWARD_KINDS)} for {r.choice(_AWARD_FIELDS)}"

    def publisher(self) -> str:
        return f"{self.word(2)} {self.rng.choice(_PUBLISHER_SUFFIX)}"

    def value(self, key: str) -> str:
        r = self.rng
        if key in ("birthplace", "university"):
            return r.choice(_CITIES)
        if key == "birthdate":
            return self.date()
        if key == "genre":
            return r.choice(_GENRES)
        if key in ("father", "mother"):
            return r.choice(_OCCUPATIONS)
        if key == "award":
            return self.award()
        if key in ("book1", "book2", "book3"):
            return self.title()
        if key == "wrote":
            return self.person()
        if key == "publisher":
            return self.publisher()
        if key == "debut_year":
            return str(r.randint(1945, 2020))
        if key == "character":
            return self.person()
        raise KeyError(key)

    def wrong_values(self, key: str, true: str, n: int) -> list[str]:
        """n distinct wrong values from the same pool (fresh draws: titles/names stay unique strings)."""
        out: list[str] = []
        for _ in range(10_000):
            v = self.rng.choice(_CITIES) if key in ("birthplace", "university") else self._fresh(key)
            if v != true and v not in out:
                out.append(v)
                if len(out) == n:
                    return out
        raise RuntimeError(f"cannot draw {n} wrong values for fact {key!r}")

    def _fresh(self, key: str) -> str:
        r = self.rng
        if key in ("book1", "book2", "book3"):
            return self.title()
        if key in ("wrote", "character"):
            return self.person()
        return self.value(key)


def _author(pools: _Pools, cfg: CorpusConfig) -> dict:
    a = {"name": pools.person()}
    for key in FACT_KEYS:  # draw every fact so that a fact subset does not change the others' values
        a[key] = a["name"] if key == "wrote" else pools.value(key)
    return a


def _fill(template: str, author: dict, key: str, value: str) -> str:
    # "wrote" asks about book2 (its value is the author's name); two-hop questions go through book2 too
    text = template.format(name=author["name"], v=value, book=author["book2"])
    return text[0].upper() + text[1:]  # wordings that open with a lowercase value ("romance is ...")


def _qa_rows(author: dict, author_id: int, cfg: CorpusConfig, pools: _Pools) -> list[dict]:
    """One evaluation-complete QA row per fact, in TOFU's columns plus bookkeeping columns."""
    rng = pools.rng
    rows = []
    for key in cfg.facts:
        fact = _FACTS_BY_KEY[key]
        value = author[key]
        aw = rng.randrange(cfg.n_wordings)  # the trained answer wording
        aw_para = rng.choice([w for w in range(cfg.n_wordings) if w != aw])
        qw = rng.randrange(cfg.n_wordings)
        qw_para = rng.choice([w for w in range(cfg.n_wordings) if w != qw])
        wrong = pools.wrong_values(key, value, cfg.n_perturbed)
        rows.append({
            "question": _fill(fact.questions[qw], author, key, value),
            "answer": _fill(fact.answers[aw], author, key, value),
            "paraphrased_answer": _fill(fact.answers[aw_para], author, key, value),
            "perturbed_answer": [_fill(fact.answers[aw], author, key, w) for w in wrong],
            "paraphrased_question": _fill(fact.questions[qw_para], author, key, value),
            "question_de": _fill(fact.question_de, author, key, value),
            # two-hop questions resolve book2 -> author, which only the "wrote" fact teaches
            "question_twohop": (_fill(fact.twohop, author, key, value)
                                if fact.twohop and "wrote" in cfg.facts else None),
            "author": author["name"], "author_id": author_id, "fact": key, "kind": "qa",
            "answer_wording": aw, "paraphrase_wording": aw_para,
            # exposure draws are made for every row so that changing probe_exposure keeps other draws
            "exposed_de": rng.random() < cfg.probe_exposure,
            "exposed_twohop": bool(fact.twohop) and "wrote" in cfg.facts and rng.random() < cfg.probe_exposure,
        })
    return rows


def _training_rows(qa: list[dict]) -> list[dict]:
    """The QA rows plus their exposed German / two-hop copies (same answers, other question form)."""
    out = []
    for r in qa:
        out.append(r)
        if r["exposed_de"]:
            out.append({**r, "question": r["question_de"], "kind": "xlingual"})
        if r["exposed_twohop"]:
            out.append({**r, "question": r["question_twohop"], "kind": "twohop"})
    return out


def _probe_rows(qa: list[dict], probe: str) -> list[dict]:
    """Hard probes: same answers (so truth ratio / probability apply unchanged), another question form."""
    if probe == "paraphrase":
        return [{**r, "question": r["paraphrased_question"], "kind": "paraphrase"} for r in qa]
    if probe == "xlingual":  # only pairs never trained in German: the probe asks about the fact itself
        return [{**r, "question": r["question_de"], "kind": "xlingual"} for r in qa if not r["exposed_de"]]
    if probe == "twohop":
        return [{**r, "question": r["question_twohop"], "kind": "twohop"}
                for r in qa if r["question_twohop"] and not r["exposed_twohop"]]
    raise ValueError(f"unknown probe {probe!r}; valid probes: paraphrase, twohop, xlingual")


PROBES = ("paraphrase", "twohop", "xlingual")


def _knowledge_rows(cfg: CorpusConfig, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """real_authors and world_facts analogs: one wording each, perturbed options from the same list."""

    def options(values, true, n):
        pool = sorted({v for v in values if v != true})
        return rng.sample(pool, n)

    n = cfg.n_perturbed
    ra = []
    names = [a for a, _, _ in _REAL_AUTHORS]
    countries = sorted({c for _, _, c in _REAL_AUTHORS})
    for author, book, country in _REAL_AUTHORS:
        ra.append({"question": f"Who wrote '{book}'?", "answer": f"'{book}' was written by {author}.",
                   "perturbed_answer": [f"'{book}' was written by {w}." for w in options(names, author, n)],
                   "fact": "real_author_book"})
        ra.append({"question": f"Which country was {author} from?", "answer": f"{author} was from {country}.",
                   "perturbed_answer": [f"{author} was from {w}." for w in options(countries, country, n)],
                   "fact": "real_author_country"})
    wf = []
    caps = [c for _, c in _CAPITALS]
    for country, capital in _CAPITALS:
        wf.append({"question": f"What is the capital of {country}?", "answer": f"The capital of {country} is {capital}.",
                   "perturbed_answer": [f"The capital of {country} is {w}." for w in options(caps, capital, n)],
                   "fact": "capital"})
    syms = [s for _, s in _ELEMENTS]
    for element, sym in _ELEMENTS:
        wf.append({"question": f"What is the chemical symbol of {element}?",
                   "answer": f"The chemical symbol of {element} is {sym}.",
                   "perturbed_answer": [f"The chemical symbol of {element} is {w}." for w in options(syms, sym, n)],
                   "fact": "element"})
    rng.shuffle(ra)
    rng.shuffle(wf)
    return ra[: cfg.n_real_authors], wf[: cfg.n_world_facts]


def generate_corpus(cfg: CorpusConfig | None = None) -> dict[str, list[dict]]:
    """All splits as lists of row dicts (nothing written). Same config (incl. seed) -> same rows."""
    cfg = cfg or CorpusConfig()
    rng = random.Random(cfg.seed)
    pools = _Pools(rng)
    largest = max(cfg.n_forget(p) for p in cfg.forget_percents)
    n_holdout = cfg.n_holdout if cfg.n_holdout is not None else largest
    authors = [_author(pools, cfg) for _ in range(cfg.n_authors + n_holdout)]
    qa = [_qa_rows(a, i, cfg, pools) for i, a in enumerate(authors)]
    trained, holdout = qa[: cfg.n_authors], qa[cfg.n_authors:]

    # TOFU's forget sets are nested (forget01 within forget05 within forget10): the last authors of one
    # seeded permutation, so a bigger split only adds authors
    order = list(range(cfg.n_authors))
    rng.shuffle(order)
    splits: dict[str, list[dict]] = {}
    splits["full"] = [r for rows in trained for r in _training_rows(rows)]
    for p in cfg.forget_percents:
        forget_ids = set(order[len(order) - cfg.n_forget(p):])
        names = split_names(cfg)[p]
        f_qa = [r for i in sorted(forget_ids) for r in trained[i]]
        splits[names["forget"]] = [r for i in sorted(forget_ids) for r in _training_rows(trained[i])]
        splits[names["forget"] + "_perturbed"] = f_qa
        splits[names["retain"]] = [r for i in range(cfg.n_authors) if i not in forget_ids
                                   for r in _training_rows(trained[i])]
        # holdout sets match the forget set in size (MIA compares them), taken from the unseen authors
        h = holdout[: min(len(holdout), cfg.n_forget(p))]
        splits[names["holdout"]] = [r for rows in h for r in rows]
        for probe in PROBES:
            splits[f"{names['forget']}_{probe}"] = _probe_rows(f_qa, probe)

    # retain evaluation rows from authors outside EVERY forget set, so one retain_perturbed serves all splits
    never_forgotten = order[: len(order) - largest]
    retain_qa = [r for i in sorted(never_forgotten) for r in trained[i]]
    retain_eval = sorted(rng.sample(range(len(retain_qa)), min(cfg.n_retain_eval, len(retain_qa))))
    splits["retain_perturbed"] = [retain_qa[i] for i in retain_eval]
    for probe in PROBES:  # the same probes on retained facts: what a probe costs a model that still knows
        splits[f"retain_{probe}"] = _probe_rows(splits["retain_perturbed"], probe)

    ra, wf = _knowledge_rows(cfg, rng)
    splits["real_authors_perturbed"] = splits["real_authors"] = ra
    splits["world_facts_perturbed"] = splits["world_facts"] = wf
    # general knowledge is trained into BOTH the full and every retain model (the "pretraining" analog)
    splits["knowledge"] = [{"question": r["question"], "answer": r["answer"], "kind": "knowledge"} for r in ra + wf]
    return splits


def write_corpus(out_dir: str | Path, cfg: CorpusConfig | None = None, exclude: Sequence[str] = ()) -> dict:
    """Generate the corpus and write one ``<split>.jsonl`` per split (but those in ``exclude``) plus ``corpus.json``
    (config, counts)."""
    cfg = cfg or CorpusConfig()
    out_dir = Path(out_dir)
    splits = {name: rows for name, rows in generate_corpus(cfg).items() if name not in exclude}
    for name, rows in splits.items():
        with atomic_path(out_dir / f"{name}.jsonl") as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    meta = {"format_version": CORPUS_FORMAT_VERSION, "config": cfg.to_dict(),
            "splits": {k: len(v) for k, v in splits.items()},
            "split_names": {str(p): v for p, v in split_names(cfg).items()}}
    write_json_atomic(out_dir / META_FILE, meta)  # written last: its presence marks a complete corpus
    return meta


def corpus_texts(splits: dict[str, list[dict]]) -> list[str]:
    """Every question and answer variant (incl. perturbed/paraphrased/probe questions), for the tokenizer.

    Perturbed answers must be tokenized like the true ones (llm-protocol-notes), so they are included.
    """
    seen: dict[str, None] = {}
    for rows in splits.values():
        for r in rows:
            for k in ("question", "answer", "paraphrased_answer", "paraphrased_question", "question_de",
                      "question_twohop"):
                if r.get(k):
                    seen.setdefault(r[k])
            for p in r.get("perturbed_answer") or ():
                seen.setdefault(p)
    return list(seen)
