"""Source state: how far each source has read, and how its last fetch went."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from digest.models import SourceState


def get_source_state(engine: Engine, name: str) -> SourceState:
    with Session(engine) as session:
        return session.get(SourceState, name) or SourceState(name=name)


def save_source_state(engine: Engine, state: SourceState) -> None:
    with Session(engine) as session:
        session.merge(state)
        session.commit()


def list_source_states(engine: Engine) -> list[SourceState]:
    with Session(engine) as session:
        return list(session.exec(select(SourceState).order_by(SourceState.name)))
