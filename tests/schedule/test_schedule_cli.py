"""The scheduling options of the real `digest` command: subscribe, set, subscribers
--json, run, status --json; bad zones and times are clear errors (exit 2)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlmodel import Session

from digest import store, subscriptions
from digest.config import Settings
from digest.errors import InputError


def subs_by_email(cli) -> dict[str, dict]:
    res = cli("subscribers", "--json")
    assert res.code == 0, res.stderr
    return {s["email"]: s for s in json.loads(res.stdout)}


def test_subscribe_and_set_schedule(cli) -> None:
    res = cli(
        "subscribe", "ada@example.org", "--keywords", "diffusion", "--timezone", "Asia/Tokyo",
        "--send-at", "07:30", "--frequency", "weekly", "--weekday", "mon",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    defaults = {"DIGEST_TIMEZONE": "America/New_York", "DIGEST_SEND_AT": "06:15"}
    res = cli("subscribe", "bo@example.org", "-k", "speech", extra_env=defaults)
    assert res.code == 0, res.stderr
    subs = subs_by_email(cli)
    ada, bo = subs["ada@example.org"], subs["bo@example.org"]
    assert (ada["timezone"], ada["send_at"], ada["frequency"], ada["weekday"]) == (
        "Asia/Tokyo", "07:30", "weekly", "mon",
    )  # fmt: skip
    assert (bo["timezone"], bo["send_at"], bo["frequency"], bo["weekday"]) == (
        "America/New_York", "06:15", "daily", None,
    )  # fmt: skip

    res = cli("set", "ada@example.org", "--frequency", "weekdays", "--send-at", "08:05")
    assert res.code == 0, res.stderr
    res = cli("set", "bo@example.org", "--weekday", "Friday", "--notify-empty")
    assert res.code == 0, res.stderr
    subs = subs_by_email(cli)
    ada, bo = subs["ada@example.org"], subs["bo@example.org"]
    assert (ada["timezone"], ada["send_at"], ada["frequency"], ada["weekday"]) == (
        "Asia/Tokyo", "08:05", "weekdays", None,
    )  # fmt: skip
    assert (bo["frequency"], bo["weekday"], bo["send_at"]) == ("weekly", "fri", "06:15")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "--timezone"),
        ({"timezone": "../../etc/passwd"}, "--timezone"),
        ({"timezone": "Europe/Berlin\r\nBcc: x@evil.org"}, "--timezone"),
        ({"timezone": "x" * 100_000}, "--timezone"),
        ({"send_at": "25:00"}, "--send-at"),
        ({"send_at": "7:30pm"}, "--send-at"),
        ({"send_at": "<script>"}, "--send-at"),
        ({"send_at": "0" * 100_000}, "--send-at"),
        ({"frequency": "hourly"}, "--frequency"),
        ({"weekday": "someday"}, "--weekday"),
        ({"frequency": "daily", "weekday": "mon"}, "--weekday"),
    ],
)
def test_bad_schedule_names_the_option(settings, args: dict, message: str) -> None:
    with pytest.raises(InputError) as info:
        subscriptions.new_subscriber(settings, "ada@example.org", "diffusion", **args)
    assert str(info.value).startswith(message)
    assert len(str(info.value)) < 400


def test_bad_zone_or_time_exits_2_without_writing(cli) -> None:
    for args, message in [
        (["--timezone", "Mars/Olympus_Mons"], "--timezone"),
        (["--send-at", "25:00"], "--send-at"),
    ]:
        res = cli("subscribe", "ada@example.org", "-k", "diffusion", *args)
        assert res.code == 2, res.stderr
        assert message in res.stderr and "Traceback" not in res.stderr
    assert subs_by_email(cli) == {}


def test_set_rejects_bad_values_and_keeps_the_old_ones(cli) -> None:
    assert cli("subscribe", "ada@example.org", "-k", "diffusion", "--send-at", "07:30").code == 0
    res = cli("set", "ada@example.org", "--timezone", "Nowhere/City", "--send-at", "08:00")
    assert res.code == 2 and "--timezone" in res.stderr
    assert subs_by_email(cli)["ada@example.org"]["send_at"] == "07:30"
    res = cli("set", "nobody@example.org", "--send-at", "08:00")
    assert res.code == 2 and "nobody@example.org" in res.stderr


def test_run_sends_what_is_due_and_status_shows_the_schedule(cli, smtp_sink) -> None:
    assert cli("subscribe", "ada@example.org", "-k", "diffusion").code == 0
    first = cli("run")
    assert first.code == 0, first.stderr
    assert len(smtp_sink.messages()) == 1  # a new subscriber's first digest comes at once
    again = cli("run", "--now", "--no-fetch")
    assert again.code == 0, again.stderr
    assert len(smtp_sink.messages()) == 1  # `--now`, but today's edition is sent already
    status = cli("status", "--json")
    assert status.code == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["sources"][0]["source"] == "sample"
    assert data["sources"][0]["last_status"] == "ok"
    assert data["next_runs"] == []  # `digest run` is no scheduler: nothing is planned
    assert data["scheduler"]["has_run"] is False
    assert data["next_digests"][0]["email"] == "ada@example.org"
    assert data["last_edition"]["sent"] == 1
    text = cli("status")
    assert text.code == 0, text.stderr
    assert "next digest: ada@example.org" in text.stdout


def _break_schedule(settings: Settings, email: str) -> None:
    engine = store.make_engine(settings.database_url)
    with Session(engine) as session:
        session.exec(  # a row written by hand or by an old version
            text("UPDATE subscriber SET timezone = 'Mars/Olympus' WHERE email = :e").bindparams(
                e=email
            )
        )
        session.commit()
    engine.dispose()


def test_status_survives_a_row_with_an_unusable_schedule(cli, settings: Settings) -> None:
    assert cli("subscribe", "bad@example.org", "-k", "diffusion").code == 0
    assert cli("subscribe", "ok@example.org", "-k", "diffusion").code == 0
    _break_schedule(settings, "bad@example.org")
    plain = cli("status")
    assert plain.code == 0, plain.stderr
    assert "Traceback" not in plain.stderr
    data = json.loads(cli("status", "--json").stdout)
    assert {d["email"] for d in data["next_digests"]} == {"bad@example.org", "ok@example.org"}


def test_run_logs_one_json_object_per_line(cli, settings: Settings, smtp_sink) -> None:
    assert cli("subscribe", "bad@example.org", "-k", "diffusion").code == 0
    _break_schedule(settings, "bad@example.org")
    result = cli("run", extra_env={"DIGEST_LOG_FORMAT": "json"})
    assert result.code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "the unusable schedule is worth a warning"
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    warning = next(ev for ev in events if ev["event"] == "schedule.unusable")
    assert warning["level"] == "warning" and warning["timezone"] == "Mars/Olympus"
    assert len(smtp_sink.messages()) == 1  # and the row still got its digest
