"""`plotboard demo`: the built-in demo board, fed live by a synthetic data generator.

The board (renderer/demo_board/plotboard.toml and charts.py) ships inside the package, so an
installed wheel has it. It is copied into a folder (a temporary one by default, removed
afterwards), a feeder thread rewrites its data files every second (the disk family's once a
minute, after making up a week of history), and the daemon renders and serves the board until
Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from renderer.errors import PlotboardError
from renderer.serve.server import BoardServer, start_server

log = logging.getLogger("plotboard")

DEMO_DIR = Path(__file__).resolve().parent / "demo_board"
BOARD_FILES = ("plotboard.toml", "charts.py")
DATA_DIR = "data"
OUTPUT = "public"  # the demo board's output folder (its plotboard.toml says so)


def install(folder: Path) -> Path:
    """Copy the demo board into folder; returns the board file.

    Files left by an earlier demo are overwritten; anything else is refused, so pointing
    --dir at a real board cannot clobber it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in BOARD_FILES:
        dest = folder / name
        if dest.exists() and _first_line(dest) != _first_line(DEMO_DIR / name):
            raise PlotboardError(f"{dest} exists and is not plotboard's demo board; choose another --dir")
    for name in BOARD_FILES:
        shutil.copyfile(DEMO_DIR / name, folder / name)
    return folder / "plotboard.toml"


def check_folder(folder: Path) -> None:
    """Refuse a --dir that is there and holds other things than the demo's board: the demo
    writes plotboard.toml, charts.py, data/*.csv and public/ into it. A new or empty folder is
    fine, and so is one an earlier demo ran in (its plotboard.toml is the demo's)."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise PlotboardError(f"{folder} exists and is not a folder; plotboard demo --dir DIR writes the demo board "
                             "into a new or empty folder: choose another --dir")
    try:
        empty = next(os.scandir(folder), None) is None
        board = folder / "plotboard.toml"
        demo_there = board.is_file() and _first_line(board) == _first_line(DEMO_DIR / "plotboard.toml")
    except OSError as exc:
        raise PlotboardError(f"cannot read {folder}: {exc.strerror or exc}") from None
    if board.exists() and not demo_there:
        raise PlotboardError(f"{board} exists and is not plotboard's demo board; choose another --dir")
    if not empty and not demo_there:
        raise PlotboardError(f"{folder} is not empty and holds no demo board; plotboard demo --dir DIR writes "
                             "plotboard.toml, charts.py, data/ and public/ there: choose a new or empty folder")


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.readline()


def load_feeder():
    """The feeder module, loaded from its file (renderer/demo_board/ is data, not a package)."""
    spec = importlib.util.spec_from_file_location("renderer._demo_feeder", DEMO_DIR / "feeder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve(folder: Path, port: int) -> BoardServer:
    """Serve folder on 127.0.0.1:port (0: any free port), or say why not, with advice."""
    try:
        return start_server(folder, port)
    except OSError as exc:
        hint = f"; try --port {port + 1}" if 0 < port < 65535 else ""
        raise PlotboardError(f"cannot serve on 127.0.0.1:{port} ({exc.strerror or exc}){hint}") from None


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set stop instead of raising KeyboardInterrupt mid-work."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def demo(port: int = 8000, folder: Path | None = None) -> int:
    """Run the live demo board on 127.0.0.1:port until SIGINT/SIGTERM; returns the exit status.

    The demo serves the output folder itself (bound before anything is written, so a port in
    use fails early) and prints the port actually bound, which with port 0 the system picks.
    """
    from renderer.daemon.loop import run

    temporary = folder is None
    root = Path(tempfile.mkdtemp(prefix="plotboard-demo-")) if temporary else Path(folder).resolve()
    if not temporary:
        check_folder(root)
    stop = threading.Event()
    feeder_thread = None
    try:
        with serve(root / OUTPUT, port) as server:
            board_file = install(root)
            feeder = load_feeder().Feeder(root / DATA_DIR)
            feeder.backfill(time.time())
            feeder.write()
            feeder_thread = threading.Thread(target=feeder.run, args=(stop,), name="plotboard-demo-feeder")
            feeder_thread.start()
            print(f"plotboard demo: {server.url}  (board in {root}; Ctrl-C stops)", flush=True)
            with _stop_on_signals(stop):
                return run(board_file, stop=stop, pages_written=server.events.notify)  # open pages are told
    finally:
        stop.set()
        if feeder_thread is not None:
            feeder_thread.join()
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
        sys.stdout.flush()
