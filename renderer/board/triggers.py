"""Why a chart renders: each render's trigger, as the log, the records and the scheduler name it.

A StrEnum, so a trigger reads as its value in a log line (`trigger=change`) and in JSON.
"""

from __future__ import annotations

from enum import StrEnum


class Trigger(StrEnum):
    NEW = "new"  # never rendered (or its record is gone)
    FAILED = "failed"  # its last render failed (a build tries again)
    CHANGED = "changed"  # its inputs differ from its last render's, found by a look (start, build, check)
    REDEFINED = "redefined"  # its settings, theme or plot code changed
    SCHEDULE = "schedule"  # its `every` or `cron` came due
    REPAIR = "repair"  # a published file of it was deleted or altered
    CHANGE = "change"  # a file event for one of its inputs (the daemon)
    MOVE = "move"  # an input was moved into place: complete at once, no quiet window
    RETRY = "retry"  # a failing chart's backoff ran out
    RELOAD = "reload"  # a reload added it or changed its settings
    BUILD = "build"  # a `plotboard build` handed to the daemon asked for it
    FORCE = "force"  # `plotboard build --force`


# What a later time window waits out its interval for (renderer.board.windows): its inputs
# changing and its schedule; a new definition, a repair or a request never waits.
LIMITED = frozenset({Trigger.CHANGED, Trigger.CHANGE, Trigger.MOVE, Trigger.SCHEDULE})
