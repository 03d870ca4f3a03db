"""Watching input files: a watchdog observer on the folders that hold them.

Folders are watched, never single files (editors and careful producers replace files by
renaming, which a watch on the file itself would lose), and events are filtered here: the
observer's callback only records which paths changed and wakes the daemon, whose loop decides
what they mean. A file moved into place shows up only as a `moved` event whose `dest_path` is
the input, so both ends of a move are recorded. When the kernel's inotify limits are reached
the watcher says so plainly and falls back to polling, which `--poll` also asks for (network
file systems need it).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from typing import Callable, NamedTuple

from watchdog import events as wd
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from renderer.board.inputs import glob_match, is_pattern, pattern_base
from renderer.store import module_use
from renderer.board.model import Board

log = logging.getLogger("plotboard")

POLL_INTERVAL = 0.5  # seconds between scans when polling
IGNORED_EVENTS = {"opened", "closed_no_write"}
# What the watches ask the kernel for: every event but those two, which each render's worker
# causes by reading its inputs and which would otherwise cross the observer's threads for nothing.
HEARD = [wd.FileCreatedEvent, wd.DirCreatedEvent, wd.FileModifiedEvent, wd.DirModifiedEvent, wd.FileDeletedEvent,
         wd.DirDeletedEvent, wd.FileMovedEvent, wd.DirMovedEvent, wd.FileClosedEvent]
# watchdog 7.1.1 reports an inotify queue overflow as a public event; 7.1.0 only logs it, and
# Watcher._hear_overflows reaches into its inotify reader instead.
EVENTS_LOST = getattr(wd, "EventsLostEvent", None)
if EVENTS_LOST is not None:
    HEARD.append(EVENTS_LOST)
LIMIT_ERRNOS = {errno.ENOSPC, errno.EMFILE}
_UNSEEN = object()
OVERFLOW = "<inotify queue overflow>"  # the path of the folder change that reports lost events


class Change(NamedTuple):
    """One changed path, as recorded by the observer's thread."""

    path: str
    moved: bool  # the path is the destination of a move: the file is complete now
    is_dir: bool
    closed: bool = False  # a writer closed the file (inotify only): possibly a finished save


class Matcher:
    """Which charts a changed path concerns: an input, a file a glob pattern matches, or a
    chart's plot module. Paths in the output folder and the bookkeeping folder never count."""

    def __init__(self, board: Board) -> None:
        self.exact: dict[str, set[str]] = {}
        self.patterns: list[tuple[str, str]] = []
        self.ignore = (str(board.output) + os.sep, str(board.state_dir) + os.sep)
        self.root = str(board.root)
        for chart in board.charts:
            for pattern in chart.inputs:
                if is_pattern(pattern):
                    self.patterns.append((pattern, chart.name))
                else:
                    self.exact.setdefault(pattern, set()).add(chart.name)
            if chart.plot_file is not None:
                self.exact.setdefault(str(chart.plot_file), set()).add(chart.name)
        # Families: (glob, the files that are members now); a file that comes or goes changes the board.
        self.families = [(os.path.normpath(os.path.join(board.root, f.foreach)),
                          {os.path.join(board.root, p) for p in f.paths}) for f in board.families]

    def wanted(self, path: str) -> bool:
        """Whether a change of `path` matters: a chart's file, or one a family's glob matches."""
        return bool(self.charts(path)) or any(glob_match(p, path) for p, _ in self.families
                                              if not path.startswith(self.ignore))

    def family_changed(self, path: str) -> bool:
        """Whether `path` appeared as a family's new member, or went while it was one."""
        if path.startswith(self.ignore):
            return False
        for pattern, members in self.families:
            if glob_match(pattern, path) and (path in members) != os.path.isfile(path):
                return True
        return False

    def charts(self, path: str) -> set[str]:
        if path.startswith(self.ignore):
            return set()
        names = set(self.exact.get(path, ()))
        names.update(module_use.charts_using(self.root, path))  # helper modules the charts' renders used
        for pattern, name in self.patterns:
            if name not in names and glob_match(pattern, path):
                names.add(name)
        return names


def plan(board: Board) -> dict[str, bool]:
    """The folders to watch (folder -> recursive) for every chart's inputs, its plot module and
    the board modules its renders used (renderer.render.modules).

    A folder that does not exist yet is watched through its nearest existing ancestor; the
    daemon plans again on every folder event, so the watch moves down as folders appear. The
    work grows with the number of distinct folders, not of charts (the daemon plans every few
    seconds).
    """
    bases = dict(_bases(board))
    for folder in module_use.all_folders(str(board.root)):
        bases.setdefault(folder, False)
    wanted: dict[str, bool] = {}
    for folder, recursive in bases.items():
        while not os.path.isdir(folder):
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder, recursive = parent, False
        wanted[folder] = wanted.get(folder, False) or recursive
    # A recursive watch on an ancestor already covers a folder.
    recursive_roots = [f for f, r in wanted.items() if r]
    return {
        f: r for f, r in wanted.items()
        if not any(f != root and f.startswith(root.rstrip(os.sep) + os.sep) for root in recursive_roots)
    }


_planned: tuple[Board | None, dict[str, bool]] = (None, {})  # the last board's folders, from its file alone


def _bases(board: Board) -> dict[str, bool]:
    """The folders the board file names (inputs, families' globs, plot modules), recursive or
    not, whether they exist or not; computed once per board."""
    global _planned
    if _planned[0] is board:
        return _planned[1]
    bases: dict[str, bool] = {}

    def want(folder: str, recursive: bool) -> None:
        bases[folder] = bases.get(folder, False) or recursive

    for family in board.families:  # a family's folder too: its members come and go with their files
        want(*pattern_base(os.path.normpath(os.path.join(board.root, family.foreach))))
    for chart in board.charts:
        for path in chart.inputs:
            want(*pattern_base(path))
        if chart.plot_file is not None:
            want(str(chart.plot_file.parent), False)
    _planned = (board, bases)
    return bases


class _Handler(FileSystemEventHandler):
    """The observer's callback: records paths and wakes the daemon, never raises."""

    def __init__(self, record: Callable[[list[Change]], None], lost: Callable[[], None]) -> None:
        super().__init__()
        self.record = record
        self.lost = lost  # the kernel dropped events

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            if event.event_type in IGNORED_EVENTS:
                return
            if EVENTS_LOST is not None and isinstance(event, EVENTS_LOST):
                self.lost()
                return
            if event.is_directory and event.event_type == "modified":
                return  # a file inside changed: its own event follows
            changes = [Change(os.fsdecode(event.src_path), False, event.is_directory, event.event_type == "closed")]
            if event.event_type == "moved":
                changes.append(Change(os.fsdecode(event.dest_path), True, event.is_directory))
            self.record(changes)
        except Exception:  # noqa: BLE001 - an exception here would end the observer's thread
            log.exception("watcher: cannot handle %r", event)


class Watcher:
    """A watchdog observer over a changing set of folders."""

    def __init__(self, notify: Callable[[], None], poll: bool = False, poll_interval: float = POLL_INTERVAL,
                 wanted: Callable[[str], bool] | None = None) -> None:
        self.notify = notify
        self.wanted = wanted  # which file paths matter; others never wake anyone (folders always do)
        self.poll_interval = poll_interval
        self.polling = poll
        self._lock = threading.Lock()
        self._changes: list[Change] = []
        self._handler = _Handler(self._record, self._events_lost)
        self._watches: dict[str, tuple[bool, int, object]] = {}  # folder -> (recursive, inode, watch)
        self.overflows = 0  # inotify queue overflows heard
        self._hooked: object = _UNSEEN  # the inotify reader _hear_overflows last looked at (watchdog 7.1.0)
        self._observer = self._new_observer()

    def _new_observer(self):
        observer = None
        if not self.polling:
            from watchdog.observers import Observer

            try:
                observer = Observer()  # one inotify instance, shared by every watch
            except OSError as exc:
                if exc.errno not in LIMIT_ERRNOS:
                    raise
                self._limit_reached(None, exc)
        if observer is None:
            from watchdog.observers.polling import PollingObserver

            observer = PollingObserver(timeout=self.poll_interval)
        observer.name = "plotboard-watcher"
        observer.daemon = True
        observer.start()
        return observer

    def _events_lost(self) -> None:
        """The kernel's inotify queue overflowed: report it as a folder change, so the daemon
        re-plans and rescans every chart."""
        self.overflows += 1
        log.warning("watcher: the inotify queue overflowed and file events were lost; rescanning every chart")
        self._record([Change(OVERFLOW, False, True)])

    def _hear_overflows(self) -> None:
        """Where watchdog only logs an overflow (7.1.0), wrap its inotify reader's event handler.

        The reader exists once a folder is scheduled (from 7.1.1 on, only then), so this runs
        after each schedule; a watchdog built otherwise is said at WARNING, and the periodic
        check (renderer.daemon.sweep.Sweep) still catches what was lost within `check_every`."""
        if EVENTS_LOST is not None or self.polling:
            return
        reader = getattr(self._observer, "_inotify_fd", None)
        if reader is self._hooked:
            return  # hooked already, or said already that it cannot be
        self._hooked = reader
        handle = getattr(reader, "handle_event", None)
        if handle is None:
            log.warning("watcher: this watchdog does not report inotify queue overflows; events it loses are "
                        "found by the periodic check only (every check_every)")
            return

        def handle_event(event: object) -> None:
            if getattr(event, "is_queue_overflow", False):
                self._events_lost()
            handle(event)

        reader.handle_event = handle_event

    @property
    def mode(self) -> str:
        return "polling" if self.polling else "inotify"

    def _record(self, changes: list[Change]) -> None:
        if self.wanted is not None:
            changes = [c for c in changes if c.is_dir or self.wanted(c.path)]
            if not changes:
                return  # e.g. a log file next to the inputs: written often, read by no chart
        with self._lock:
            self._changes.extend(changes)
        self.notify()

    def take(self) -> list[Change]:
        """The changes recorded since the last call."""
        with self._lock:
            changes, self._changes = self._changes, []
        return changes

    def folders(self) -> dict[str, bool]:
        return {folder: recursive for folder, (recursive, _, _) in self._watches.items()}

    def watch(self, folders: dict[str, bool]) -> None:
        """Watch exactly these folders (folder -> recursive); a folder that was deleted and
        created again is watched afresh."""
        for folder, (recursive, inode, handle) in list(self._watches.items()):
            if folders.get(folder) != recursive or _inode(folder) != inode:
                self._unschedule(folder)
        for folder, recursive in folders.items():
            if folder not in self._watches:
                self._schedule(folder, recursive)

    def _schedule(self, folder: str, recursive: bool) -> None:
        inode = _inode(folder)
        if inode is None:
            return
        try:
            handle = self._observer.schedule(self._handler, folder, recursive=recursive, event_filter=HEARD)
        except OSError as exc:
            if exc.errno in LIMIT_ERRNOS and not self.polling:
                self._fall_back_to_polling(folder, exc)
                self._schedule(folder, recursive)
            else:
                log.warning("watcher: cannot watch %s: %s", folder, exc.strerror or exc)
            return
        self._watches[folder] = (recursive, inode, handle)
        self._hear_overflows()

    def _unschedule(self, folder: str) -> None:
        _, _, handle = self._watches.pop(folder)
        try:
            self._observer.unschedule(handle)
        except (KeyError, OSError):
            pass

    def _limit_reached(self, folder: str | None, exc: OSError) -> None:
        if exc.errno == errno.ENOSPC:
            what = "the inotify watch limit is reached: raise fs.inotify.max_user_watches (sysctl)"
        else:
            what = ("no inotify instance can be opened: raise fs.inotify.max_user_instances (sysctl) "
                    "or the open files limit (ulimit -n)")
        log.error(
            "watcher: cannot watch %s with inotify (%s: %s); %s, or run with --poll. "
            "Falling back to polling every %gs.",
            folder or "input folders", errno.errorcode.get(exc.errno, exc.errno), exc.strerror or exc, what,
            self.poll_interval,
        )
        self.polling = True

    def _fall_back_to_polling(self, folder: str, exc: OSError) -> None:
        self._limit_reached(folder, exc)
        watched = self.folders()
        self._stop_observer()
        self._watches.clear()
        self._observer = self._new_observer()
        for other, recursive in watched.items():
            self._schedule(other, recursive)

    def _stop_observer(self) -> None:
        try:
            self._observer.unschedule_all()
        except Exception:  # noqa: BLE001 - stopping must not fail
            pass
        self._observer.stop()
        self._observer.join(timeout=5)

    def stop(self) -> None:
        self._stop_observer()
        self._watches.clear()

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _inode(folder: str) -> int | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_ino if os.path.isdir(folder) else None
