"""A new source kind or transport is one registry entry: parsing, the start-up check,
building, the scheduler's jobs and the pipeline pick it up without other code knowing.

The toy kind and transport are registered for one `with` block only, so nothing leaks
into other tests; one test passes a registry of its own instead."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine

from digest import pipeline, subscriptions
from digest.config import Settings
from digest.delivery import SendResult, make_transport
from digest.delivery.transports import TRANSPORTS, TransportRegistry
from digest.errors import ConfigError
from digest.scheduler import job_specs
from digest.sources import build_source, build_sources, check_source_specs, parse_source_specs
from digest.sources.base import FetchBatch, PaperRecord, Source
from digest.sources.file import FileSource
from digest.sources.http import SourceClients
from digest.sources.registry import SOURCE_KINDS, FetchTiming, SourceKind, SourceRegistry
from digest.startup import load_checked_settings

TODAY = date(2026, 3, 2)


@dataclass
class ToySource:
    """Papers titled after the spec's argument, e.g. `toy:graphs` -> "About graphs"."""

    name: str
    topic: str

    def fetch(self, cursor: dict[str, Any], since: date | None = None) -> FetchBatch:
        record = PaperRecord(
            id=f"toy-{self.topic}", title=f"About {self.topic}", source=self.name, published=TODAY
        )
        return FetchBatch(records=[record])


built_with: list[SourceClients | None] = []


def build_toy(arg: str, settings: Settings, clients: SourceClients | None) -> Source:
    built_with.append(clients)
    return ToySource(f"toy:{arg}", arg)


def check_toy(arg: str) -> None:
    if arg == "forbidden":
        raise ValueError(f"toy:NAME must not be {arg!r}")


TOY = SourceKind(
    "toy",
    True,
    build_toy,
    usage="toy:NAME",
    check=check_toy,
    needs_http=False,
    timing=FetchTiming.ARXIV_ANNOUNCEMENTS,
    commas_in_argument=True,
)


def test_a_registered_source_kind_is_parsed_checked_built_and_scheduled(settings: Settings):
    with SOURCE_KINDS.registered(TOY):
        # Parsing: its own prefix starts a new spec; its argument may hold commas.
        assert parse_source_specs("toy:a,b, sample,toy:c") == ["toy:a,b", "sample", "toy:c"]
        # Checking at start-up: the grammar, its own check, and the list of kinds.
        assert load_checked_settings({"DIGEST_SOURCES": "sample,toy:x"}, None).sources == (
            "sample,toy:x"
        )
        with pytest.raises(ConfigError, match=r"^DIGEST_SOURCES: toy:NAME must not be"):
            load_checked_settings({"DIGEST_SOURCES": "toy:forbidden"}, None)
        with pytest.raises(ConfigError) as caught:
            load_checked_settings({"DIGEST_SOURCES": "toy:"}, None)
        assert str(caught.value) == (
            "DIGEST_SOURCES: unknown source 'toy:'; expected sample, file:PATH, huggingface, "
            "arxiv:CATEGORIES, feed:URL or toy:NAME"
        )
        # Building: no HTTP clients for a kind that does not need them.
        built_with.clear()
        toy, sample = build_sources(replace(settings, sources="toy:x,sample"))
        assert isinstance(toy, ToySource) and toy.name == "toy:x"
        assert isinstance(sample, FileSource)
        assert built_with == [None]
        # Scheduling: fetched with arXiv's announcements, as its timing says.
        jobs = {j.id: j for j in job_specs(replace(settings, sources="toy:x,sample"))}
        assert jobs["fetch-arxiv"].args == ("toy:x",)
        assert jobs["fetch-daytime"].args == ("sample",)
    # Gone again after the block.
    with pytest.raises(ValueError, match="unknown source 'toy:x'"):
        check_source_specs("toy:x")
    with pytest.raises(ConfigError, match="unknown source 'toy:x'"):
        build_source("toy:x", settings)


def test_a_registry_of_ones_own_replaces_the_default(settings: Settings):
    only_toy = SourceRegistry((TOY,))
    assert check_source_specs("toy:x", only_toy) == "toy:x"
    with pytest.raises(ValueError, match=r"unknown source 'sample'; expected toy:NAME$"):
        check_source_specs("sample", only_toy)
    with pytest.raises(ConfigError, match="expected toy:NAME"):
        load_checked_settings({"DIGEST_SOURCES": "sample"}, None, kinds=only_toy)
    assert isinstance(build_source("toy:y", settings, kinds=only_toy), ToySource)
    assert [j.id for j in job_specs(replace(settings, sources="toy:y"), only_toy)] == [
        "fetch-arxiv",
        "send-due",
        "prune",
    ]
    with pytest.raises(ValueError, match="already registered"):
        only_toy.register(TOY)


@dataclass
class Pigeon:
    """A transport that keeps what it is given."""

    carried: list[tuple[str, bytes]] = field(default_factory=list)

    async def open(self) -> None:
        return None

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        self.carried.append((recipient, message))
        return SendResult(True, "250 carried")

    async def close(self) -> None:
        return None


def test_a_registered_transport_is_checked_and_carries_the_digests(
    tmp_path, settings: Settings, engine
):
    pigeon = Pigeon()
    with TRANSPORTS.registered("pigeon", lambda _settings: pigeon):
        checked = load_checked_settings({"DIGEST_TRANSPORT": " Pigeon "}, None)
        assert checked.transport == "pigeon"
        with pytest.raises(ConfigError) as caught:
            load_checked_settings({"DIGEST_TRANSPORT": "owl"}, None)
        assert str(caught.value) == (
            "DIGEST_TRANSPORT: expected one of smtp, file, sendmail, pigeon, got 'owl'"
        )
        # The pipeline sends through whatever the setting names.
        with SOURCE_KINDS.registered(TOY):
            s = replace(settings, transport="pigeon", sources="toy:graphs", send_at="00:00")
            subscriptions.subscribe(engine, s, "ada@example.org", "graphs", send_at="00:00")
            with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=True):
                report = pipeline.run_once(engine, s)
        assert report.ok and report.send.sent == 1
        [(recipient, message)] = pigeon.carried
        assert recipient == "ada@example.org" and b"About graphs" in message
    with pytest.raises(
        ConfigError, match="DIGEST_TRANSPORT: expected one of smtp, file, sendmail,"
    ):
        load_checked_settings({"DIGEST_TRANSPORT": "pigeon"}, None)
    with pytest.raises(ConfigError, match="got 'pigeon'"):
        make_transport(replace(settings, transport="pigeon"))


def test_a_transport_registry_of_ones_own(settings: Settings):
    own = TransportRegistry({"pigeon": lambda _settings: Pigeon()})
    assert isinstance(make_transport(replace(settings, transport="pigeon"), own), Pigeon)
    with pytest.raises(ConfigError, match="expected one of pigeon, got 'smtp'"):
        make_transport(settings, own)
    with pytest.raises(ValueError, match="lower case"):
        own.register("Owl", lambda _settings: Pigeon())
