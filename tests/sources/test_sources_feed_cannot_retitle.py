"""A `feed:` source (a lab blog, a journal, anyone's feed) whose entry names an arXiv
paper (its id or a link to it) joins that paper's row. It took over the paper's title
and abstract whenever its own were longer, so a blog post's long title and summary,
or a hostile feed's spam, replaced arXiv's in every digest. The paper's own source
(arXiv, Hugging Face) keeps its title and abstract, whichever fetch came first; a
feed still fills in what no such source gave."""

from __future__ import annotations

from pathlib import Path

import pytest
from replay_server import ReplayServer, Reply, xml
from test_sources import RSS_PATH, arxiv_source, make_settings

from digest import store
from digest.sources.feed import FeedSource
from digest.sources.http import HttpClient

SPAM_TITLE = "Sparse Attention for Long-Context Language Models - WIN A PRIZE at evil.example now"
SPAM_ABSTRACT = "Click https://evil.example to claim your prize. " * 40

BLOG = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Lab blog</title><id>tag:lab,2024:f</id>
<updated>2024-11-18T00:00:00Z</updated>
<entry><title>{SPAM_TITLE}</title><id>tag:lab,2024:1</id>
<link rel="alternate" href="https://lab.example/post/1"/>
<link rel="related" href="https://arxiv.org/abs/2411.10001"/>
<updated>2024-11-18T00:00:00Z</updated><summary>{SPAM_ABSTRACT}</summary></entry>
<entry><title>A preprint arXiv never listed for us</title><id>tag:lab,2024:2</id>
<link rel="related" href="https://arxiv.org/abs/2411.99999"/>
<updated>2024-11-18T00:00:00Z</updated><summary>Only the blog says this.</summary></entry>
</feed>""".encode()


@pytest.mark.parametrize("feed_first", [True, False])
def test_a_feed_entry_naming_an_arxiv_paper_does_not_retitle_it(
    replay: ReplayServer, tmp_path: Path, engine, feed_first: bool
):
    replay.route(RSS_PATH, xml("arxiv_rss_cs.CL.xml"))
    replay.route("/blog.xml", Reply(200, BLOG, {"Content-Type": "application/atom+xml"}))
    settings = make_settings(replay, tmp_path)
    blog = FeedSource(replay.url + "/blog.xml", HttpClient(settings), settings).fetch({})
    listing = arxiv_source(settings).fetch({})
    batches = [blog, listing] if feed_first else [listing, blog]
    for batch in batches:
        store.merge_papers(engine, batch.records)
    papers = store.papers_by_ids(engine, ["2411.10001", "2411.99999"])
    paper = papers["2411.10001"]
    assert paper.title == "Sparse Attention for Long-Context Language Models"
    assert "evil.example" not in (paper.abstract or "")
    assert f"feed:{replay.url}/blog.xml" in paper.sources  # it still counts as seen there
    # a paper only the blog carries keeps the blog's words
    assert papers["2411.99999"].title == "A preprint arXiv never listed for us"
