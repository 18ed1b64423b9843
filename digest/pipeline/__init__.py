"""Wires the stages in their one direction: sources -> store -> matching -> rendering ->
delivery. The CLI and the scheduler call these functions and nothing deeper.

| module        | holds                                                              |
|---------------|--------------------------------------------------------------------|
| `fetch.py`    | every source into the store                                        |
| `editions.py` | who is due; the edition streamed in claimed chunks                 |
| `build.py`    | one chunk: match, render (`render_row`), commit                    |
| `pool.py`     | chunks built here or in worker processes                           |
| `sending.py`  | the sender in its own thread, starting on the first chunk          |
| `run.py`      | a whole run (`digest run`), `digest retry`                         |
| `worker.py`   | `digest worker`: runs until told to stop                           |
| `stopping.py` | SIGTERM and Ctrl-C as one stop event (run, worker, serve, web)     |
"""

from digest.pipeline.build import BuildReport, render_row
from digest.pipeline.editions import build_due, build_editions, due_editions
from digest.pipeline.fetch import SourceReport, fetch_all
from digest.pipeline.progress import Tracker, no_tracking
from digest.pipeline.run import RunReport, active_subscribers, retry_failed, run_once

__all__ = [
    "BuildReport",
    "RunReport",
    "SourceReport",
    "Tracker",
    "active_subscribers",
    "build_due",
    "build_editions",
    "due_editions",
    "fetch_all",
    "no_tracking",
    "render_row",
    "retry_failed",
    "run_once",
]
