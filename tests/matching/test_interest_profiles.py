"""Plain-English interests and example papers: parsing, ranking (with the packaged
model and without it), the keyword fusion, the threshold, stored vectors.

The papers are real ones from ../shared/corpus (a few dozen, so embedding them is
quick); the model is the real packaged one (skipped locally when the `semantic`
extra is missing, a failure under CI=true)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO, need_service

from digest import semantic, store, subscriptions
from digest.matching import (
    Interest,
    KeywordQuery,
    Limits,
    Profile,
    SemanticPapers,
    load_embedder,
    profile_from_input,
    profile_of,
    rank,
    split_interest,
)
from digest.matching.embedding import paper_text
from digest.records import PaperRecord

CORPUS = REPO.parent / "shared" / "corpus" / "seed_papers_enriched.jsonl"
JUDGED = REPO / "bench" / "data" / "judged_interests.jsonl"
REWARD = "I work on reward models and preference optimisation (RLHF, DPO) for aligning LLMs."
JAILBREAK_TOPIC = "jailbreak attacks and red-teaming of language models"


def _corpus() -> list[SimpleNamespace]:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not here")
    judged = {json.loads(line)["id"]: json.loads(line) for line in JUDGED.read_text().splitlines()}
    wanted = set(judged["p01"]["relevant"]) | set(judged["p17"]["relevant"])
    wanted |= set(judged["p10"]["relevant"]) | set(judged["p12"]["relevant"])
    out = []
    for n, line in enumerate(CORPUS.read_text().splitlines()):
        d = json.loads(line)
        key = d.get("arxiv_id") or f"line:{n}"
        if key in wanted and key not in {p.id for p in out}:
            out.append(SimpleNamespace(id=key, title=d["title"], abstract=d.get("abstract") or ""))
    return out


@pytest.fixture(scope="module")
def papers() -> list[SimpleNamespace]:
    return _corpus()


@pytest.fixture(scope="module")
def model():
    found = load_embedder()
    need_service(found.embedder is not None, f"the embedding model ({found.reason})")
    return found.embedder


@pytest.fixture(scope="module")
def embedded(papers, model) -> SemanticPapers:
    return SemanticPapers(papers, model.embed([paper_text(p) for p in papers]), model)


def red_teaming(papers) -> list[str]:
    """The corpus papers judged on red-teaming and jailbreaks (profile p17), in order."""
    judged = json.loads(JUDGED.read_text().splitlines()[16])
    assert judged["id"] == "p17"
    wanted = {k for k, g in judged["relevant"].items() if g == 2}
    return [p.id for p in papers if p.id in wanted]


def ranked(profile: Profile, papers) -> list[str]:
    return [m.paper_id for m in rank({0: profile}, papers)[0]]


def interest(text: str, liked=(), disliked=(), max_papers: int = 200) -> Profile:
    return Profile((Interest.of(text, liked, disliked),), Limits(max_papers))


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "topic", "excluded"),
    [
        (
            REWARD + " Not interested in jailbreaks or red-teaming.",
            REWARD,
            ("jailbreaks", "red-teaming"),
        ),
        ("diffusion models, no video generation please", "diffusion models", ("video generation",)),
        ("robot learning; I'm not after humanoids", "robot learning", ("humanoids",)),
        (
            "LLMs in medicine. Mental-health chatbots are not my thing.",
            "LLMs in medicine.",
            ("Mental-health chatbots",),
        ),
        (
            "Optimizers with little or no state memory.",
            "Optimizers with little or no state memory.",
            (),
        ),
        ("Not only RL but planning", "Not only RL but planning", ()),
    ],
)
def test_exclusion_sentences_are_read_out_of_the_interest(text, topic, excluded):
    assert split_interest(text) == (topic, excluded)


@pytest.mark.parametrize(
    "hostile",
    ["<script>alert(1)</script> not interested in <b>x</b>", "a\r\nb\x00c " * 3000, "not " * 5000],
)
def test_hostile_interests_parse_and_rank_without_error(hostile, papers):
    part = Interest.of(hostile)
    assert len(part.text) <= 4000
    rank({0: Profile((part,), Limits(5))}, papers)  # no exception, whatever it finds


# ---------------------------------------------------------------- ranking


def test_an_interest_alone_ranks_the_papers_it_describes_first(embedded):
    judged = json.loads(JUDGED.read_text().splitlines()[0])  # p01, the reward-model interest
    top = ranked(interest(judged["interest"], max_papers=5), embedded)
    relevant = {k for k, g in judged["relevant"].items() if g >= 1}
    assert len(top) == 5 and len(set(top) & relevant) >= 4, top


def test_lexical_ranking_when_the_model_is_off(papers):
    """No vectors (DIGEST_SEMANTIC=off or no extra): BM25 alone still finds them."""
    judged = json.loads(JUDGED.read_text().splitlines()[0])
    top = ranked(interest(judged["interest"], max_papers=5), SemanticPapers(papers))
    relevant = {k for k, g in judged["relevant"].items() if g >= 1}
    assert len(set(top) & relevant) >= 4, top


@pytest.mark.parametrize("with_model", [True, False])
def test_exclusions_are_honoured(with_model, papers, request):
    ready = request.getfixturevalue("embedded") if with_model else SemanticPapers(papers)
    wide = ranked(interest("safety of language models: alignment and attacks"), ready)
    said = ranked(
        interest("safety of language models: alignment and attacks. Not interested in jailbreaks."),
        ready,
    )
    mentions = {p.id for p in papers if "jailbreak" in paper_text(p).lower()}
    assert mentions & set(wide), "the exclusion must have something to remove"
    assert not mentions & set(said)
    assert set(said) <= set(wide)


def test_keywords_only_profiles_rank_as_before(papers):
    profile = profile_from_input("preference OR reward", 50)
    assert [type(p) for p in profile.parts] == [KeywordQuery]
    alone = rank({0: profile}, papers)[0]
    again = rank({0: profile}, SemanticPapers(papers))[0]
    assert [m.paper_id for m in alone] == [m.paper_id for m in again] and alone


@pytest.mark.parametrize("with_model", [True, False])
def test_keywords_and_interest_rerank_the_query_matches(with_model, papers, request):
    ready = request.getfixturevalue("embedded") if with_model else SemanticPapers(papers)
    query = profile_from_input("model*", 200)
    keyword = [m.paper_id for m in rank({0: query}, ready)[0]]
    both = profile_from_input("model*", 200, interest=JAILBREAK_TOPIC)
    matches = rank({0: both}, ready)[0]
    fused = [m.paper_id for m in matches]
    assert set(fused) == set(keyword)  # the query decides which papers, the interest the order
    assert fused != keyword
    jail = {p.id for p in papers if "jailbreak" in paper_text(p).lower()}
    top = fused[: len(jail)]
    assert len(set(top) & jail) >= len(jail) // 2, (top, jail)
    why = matches[0].why()
    assert why.startswith("matched: model") and "similar to your interest" in why


def test_liked_papers_pull_their_neighbours_up(embedded, papers):
    base = ranked(interest("evaluation of large language models"), embedded)
    jail = red_teaming(papers)
    assert len(jail) >= 3
    liked = jail[:2]
    moved = ranked(interest("evaluation of large language models", liked=liked), embedded)
    others = [pid for pid in jail[2:] if pid in moved]
    assert others, "a liked paper's neighbours must be eligible"
    for pid in others:
        assert pid not in base or moved.index(pid) < base.index(pid)
    assert not set(liked) & set(moved)  # what you told us you liked is not news
    match = rank({0: interest("evaluation of large language models", liked=liked)}, embedded)[0]
    said = " ".join(m.why() for m in match if m.paper_id in others)
    assert "you liked" in said


def test_disliked_papers_push_their_neighbours_down(embedded, papers):
    text = "safety and alignment of language models"
    base = ranked(interest(text), embedded)
    jail = red_teaming(papers)
    pushed = ranked(interest(text, disliked=jail[:2]), embedded)
    rest = [pid for pid in jail[2:] if pid in base and pid in pushed]
    assert rest
    assert sum(pushed.index(p) for p in rest) > sum(base.index(p) for p in rest)


def test_example_papers_alone_are_a_profile(embedded, papers):
    jail = red_teaming(papers)
    top = ranked(interest("", liked=jail[:2], max_papers=3), embedded)
    judged = json.loads(JUDGED.read_text().splitlines()[16])["relevant"]
    assert top and all(pid in judged for pid in top), top


def test_a_quiet_day_sends_fewer_papers_not_weaker_ones(embedded, papers):
    """The threshold is absolute: among papers that are all off-topic, nothing."""
    off_topic = [p for p in papers if "optim" not in paper_text(p).lower()]
    day = SemanticPapers(
        off_topic, embedded.vectors[[papers.index(p) for p in off_topic]], embedded.embedder
    )
    assert ranked(interest("second-order optimizers such as Shampoo and Adam variants"), day) == []
    full = ranked(interest("second-order optimizers such as Shampoo and Adam variants"), embedded)
    assert full  # the same interest on a day with such papers


# ---------------------------------------------------------------- stored


def _records(papers) -> list[PaperRecord]:
    return [PaperRecord(id=p.id, title=p.title, abstract=p.abstract, source="test") for p in papers]


def test_vectors_are_stored_once_and_the_setting_turns_them_off(engine, settings, papers, model):
    store.merge_papers(engine, _records(papers[:6]))
    subscriptions.subscribe(engine, settings, "ada@example.org", None, interest=REWARD)
    assert semantic.embed_new_papers(engine, settings) == 6
    assert semantic.embed_new_papers(engine, settings) == 0  # once per paper
    assert store.count_paper_vectors(engine, model.name) == 6
    sub = store.get_subscriber(engine, "ada@example.org")
    assert store.profile_vectors(engine, model.name, [sub.id])  # embedded when saved
    profiles = semantic.profiles_of(engine, settings, [sub])
    part = profiles[sub.id].parts[0]
    assert isinstance(part, Interest) and part.vector is not None
    ready = semantic.paper_set(engine, settings, store.list_papers(engine), profiles.values())
    assert isinstance(ready, SemanticPapers) and ready.vectors is not None
    assert np.abs(ready.vectors).sum(axis=1).all()

    off = settings.__class__(**{**settings.__dict__, "semantic": "off"})
    assert semantic.ranking_status(off)["ranking"] == "lexical"
    lexical = semantic.paper_set(engine, off, store.list_papers(engine), profiles.values())
    assert isinstance(lexical, SemanticPapers) and lexical.vectors is None
    assert semantic.ranking_status(settings)["ranking"] == "semantic"


def test_ratings_join_the_profile_as_examples(engine, settings):
    sub = subscriptions.subscribe(
        engine, settings, "bo@example.org", "diffusion", likes="2401.10580"
    )
    profile = profile_of(sub, liked=("2402.08925",), disliked=("2312.00001",))
    kinds = {type(p) for p in profile.parts}
    assert kinds == {KeywordQuery, Interest}
    part = next(p for p in profile.parts if isinstance(p, Interest))
    assert part.liked == ("2401.10580", "2402.08925") and part.disliked == ("2312.00001",)


@pytest.mark.parametrize(
    "british, american",
    [
        ("optimisation", "optimization"),
        ("tokenisers", "tokenizers"),
        ("modelling", "modeling"),
        ("labelled", "labeled"),
        ("behaviour", "behavior"),
        ("analysed", "analyzed"),
    ],
)
def test_british_spellings_match_american_ones(british, american):
    """Interests are often written in British English, papers mostly in American."""
    doc = SimpleNamespace(id="a", title=f"Better {american} of networks", abstract="")
    other = SimpleNamespace(id="b", title="Something unrelated entirely", abstract="")
    top = ranked(interest(f"{british} of networks"), SemanticPapers([other, doc]))
    assert top[:1] == ["a"]


def test_a_shared_phrase_outranks_the_same_words_apart_and_explains_the_match():
    """Adjacent words of the interest are a term too: the paper that says "reward
    models" beats one that has "reward" and "models" far apart, and the explanation
    names the phrase once, not its words one by one."""
    apart = SimpleNamespace(
        id="apart",
        title="Models of reward in animal learning",
        abstract="We study how models predict reward in animals.",
    )
    phrase = SimpleNamespace(
        id="phrase",
        title="Reward models for animal learning",
        abstract="We study how reward models predict learning in animals.",
    )
    filler = [
        SimpleNamespace(id=f"f{i}", title=f"Topic {i} of vision", abstract="Vision study.")
        for i in range(6)
    ]
    profile = Profile((Interest.of("reward models"),), Limits(5))
    found = rank({0: profile}, SemanticPapers([apart, phrase, *filler]))[0]
    assert [m.paper_id for m in found[:2]] == ["phrase", "apart"]
    assert [h.term for h in found[0].hits] == ["reward models"]
    assert [h.term for h in found[1].hits] != ["reward models"]
    assert all(h.term.lower() in paper_text(apart).lower() for h in found[1].hits)
