"""The command line: parses arguments, calls plain functions, turns user errors into exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import threading
import time
from pathlib import Path

from renderer import __version__
from renderer.errors import NoBoardFile, PlotboardError

log = logging.getLogger("plotboard")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        from renderer.text import iso

        entry = {"time": iso(record.created), "level": record.levelname.lower(), "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, allow_nan=False)


def setup_logging(fmt: str = "text", verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    threading.excepthook = log_thread_death


def log_thread_death(args: threading.ExceptHookArgs) -> None:
    """threading.excepthook: the death of a thread not run by renderer.threads.guarded_thread (the
    demo's feeder) is logged where the rest of plotboard's log goes, with its traceback."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    log.error("thread %s died: %s", name, args.exc_value,
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def port(text: str) -> int:
    """A TCP port for --serve/--port: 0 (any free port) to 65535."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0: any free port), got {text!r}")
    return number


def address(text: str) -> tuple[str, int]:
    """--serve's [HOST:]PORT: a port alone is on 127.0.0.1; an IPv6 host in brackets ([::1]:8000)."""
    host, sep, number = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    elif host.startswith("[") and host.endswith("]") and ":" in host:
        host = host[1:-1]
    elif ":" in host or not host or host.startswith("["):
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT (an IPv6 address in brackets: [::1]:8000), got {text!r}")
    return host, port(number)


DEFAULT_BOARD = "plotboard.toml"


def board_file(config: str | None) -> str:
    """The board file `-c` names (None: ./plotboard.toml); NoBoardFile, saying how to start one,
    when there is none."""
    if config is None:
        if not Path(DEFAULT_BOARD).exists():
            raise NoBoardFile(f"no {DEFAULT_BOARD} here: run plotboard init . or pass -c FILE")
        return DEFAULT_BOARD
    path = Path(config)
    if not path.exists():
        folder = shlex.quote(str(path.parent)) if path.name == DEFAULT_BOARD else "DIR"
        raise NoBoardFile(f"{config}: no such board file; run plotboard init {folder} to start one")
    return config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plotboard", description="Render matplotlib charts into a static status board.")
    p.add_argument("--version", action="version", version=f"plotboard {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def board_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-c", "--config", metavar="FILE", help=f"board file (default: ./{DEFAULT_BOARD})")
        sp.add_argument("--log-format", choices=["text", "json"], default="text", help="log line format on stderr")
        sp.add_argument("-v", "--verbose", action="store_true", help="also log tracebacks of failed renders")

    run = sub.add_parser("run", help="the daemon: keep every chart current (foreground)")
    board_args(run)
    run.add_argument("--serve", type=address, metavar="[HOST:]PORT",
                     help="also serve the output folder and /metrics on HOST:PORT (HOST: 127.0.0.1 unless given)")
    run.add_argument("--poll", action="store_true",
                     help="watch input files by polling (network file systems, or when inotify limits are reached)")

    build = sub.add_parser("build", help="one pass: render what is out of date, write the pages, exit")
    board_args(build)
    build.add_argument("--force", action="store_true", help="render every chart, out of date or not")
    build.add_argument("--only", nargs="+", metavar="NAME", help="consider only these charts")
    build.add_argument("--metrics-file", metavar="PATH",
                       help="also write the board's metrics there, for node_exporter's textfile collector")

    status = sub.add_parser("status", help="check status.json; monitoring-plugin exit codes")
    status.add_argument("-c", "--config", metavar="FILE", help=f"board file (default: ./{DEFAULT_BOARD})")
    status.add_argument("--json", action="store_true", help="print the manifest with states judged now")

    export = sub.add_parser("export", help="the board as published, as one self-contained HTML file")
    export.add_argument("-c", "--config", metavar="FILE", help=f"board file (default: ./{DEFAULT_BOARD})")
    export.add_argument("-o", "--output", metavar="FILE", default="board.html", help="where to write it (-: stdout)")
    export.add_argument("--only", nargs="+", metavar="NAME", help="export only these charts")

    init = sub.add_parser("init", help="write a small working board to start from")
    init.add_argument("dir", type=Path, metavar="DIR",
                      help="the folder to write it into (made if needed; . for this one); nothing is overwritten")

    demo = sub.add_parser("demo", help="a live demo board with synthetic data on http://127.0.0.1:8000")
    demo.add_argument("--port", type=port, default=8000, help="the port to serve on (0: any free port)")
    demo.add_argument("--dir", type=Path, help="where to keep the demo board (default: a temporary folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Decided by the parsed command: `build --only run` is a build, which SIGTERM stops.
    if args.command == "run" and threading.current_thread() is threading.main_thread():
        from renderer.daemon.wake import catch_early_signals

        catch_early_signals()
    setup_logging(getattr(args, "log_format", "text"), getattr(args, "verbose", False))
    try:
        return COMMANDS[args.command](args)
    except PlotboardError as exc:
        print(f"plotboard: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def cmd_build(args: argparse.Namespace) -> int:
    from renderer.build import build
    from renderer.pages.model import check_use
    from renderer.board.config import load_board

    board = load_board(board_file(args.config))
    check_use(board)
    if args.metrics_file is not None:
        from renderer.metrics import textfile

        metrics_file = textfile.check_path(args.metrics_file, board)  # before anything renders
    result = build(board, force=args.force, only=args.only)
    log.info("build: %d rendered, %d failed, %d up to date%s", len(result.rendered), len(result.failed),
             len(result.up_to_date), f" (done by {result.by})" if result.by else "")
    if args.metrics_file is not None:
        textfile.write_build(metrics_file, board, result.durations)
    return 0 if result.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from renderer.pages import status
    from renderer.board.config import load_board

    try:
        board = load_board(board_file(args.config))
        manifest = status.mark_missing(status.rejudge(status.read_manifest(board.output), time.time()), board.output)
        code = status.exit_code(manifest)
        out = json.dumps(manifest, indent=1, allow_nan=False) if args.json else status.summary(manifest, code, time.time())
    except (PlotboardError, OSError, ValueError, RecursionError) as exc:
        print(status.status_line(f"PLOTBOARD UNKNOWN - {exc}"))
        return status.UNKNOWN
    print(out)
    return code


def cmd_export(args: argparse.Namespace) -> int:
    from renderer.board.config import load_board
    from renderer.pages.export import export

    export(load_board(board_file(args.config)), args.output, args.only, time.time())
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from renderer.scaffold import board_files, write_board

    write_board(args.dir)
    here = args.dir.resolve() == Path.cwd().resolve()  # `init .`, or this folder by another name
    folder = shlex.quote(str(args.dir))
    names = sorted(board_files(), key=lambda name: name != "plotboard.toml")  # the board file first
    print(f"wrote a new board {'here' if here else f'in {folder}'}: {', '.join(names)}")
    print(f"next: {'' if here else f'cd {folder} && '}{NEXT_STEP}, then open {NEXT_URL}")
    return 0


NEXT_STEP = "plotboard run --serve 8000"  # what `init` tells a new user to do next
NEXT_URL = "http://127.0.0.1:8000/"


def cmd_run(args: argparse.Namespace) -> int:
    from renderer.daemon.loop import run

    return run(board_file(args.config), serve=args.serve, poll=args.poll)


def cmd_demo(args: argparse.Namespace) -> int:
    from renderer.demo import demo

    return demo(port=args.port, folder=args.dir)


COMMANDS = {"build": cmd_build, "status": cmd_status, "export": cmd_export, "init": cmd_init, "run": cmd_run, "demo": cmd_demo}
