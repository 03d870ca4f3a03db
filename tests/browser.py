"""Real nginx and headless Chromium for the page tests and scripts/screenshots.py.

Nothing here imports pytest at module level, so the screenshot script can use the same tooling.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from daemon_helpers import wait_for  # noqa: F401 - the one copy; the page tests import it from here

REPO = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
CHROMIUM = "/usr/bin/chromium"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Installed before any page script runs: records every moment a chart card shows a broken or
# half-loaded image once window.__watch is set (after the first load), and every image swap.
WATCH_IMAGES = """
window.__broken = [];
window.__swaps = [];
window.__watch = false;
addEventListener("error", (e) => {
  const t = e.target;
  if (t && t.tagName === "IMG") __broken.push("error event: " + t.src);
}, true);
new MutationObserver((records) => {
  if (!window.__watch) return;
  for (const r of records) {
    if (r.type === "attributes" && r.target.tagName === "IMG" && r.target.isConnected)
      __broken.push("src changed in place: " + r.target.getAttribute(r.attributeName));
    for (const n of r.addedNodes || []) {
      if (n.tagName !== "IMG") continue;
      __swaps.push([Date.now(), n.getAttribute("src")]);
      if (!n.complete || n.naturalWidth === 0) __broken.push("inserted before loading: " + n.src);
    }
  }
}).observe(document, {childList: true, subtree: true, attributes: true, attributeFilter: ["src", "srcset"]});
(function frame() {
  if (window.__watch)
    for (const img of document.querySelectorAll(".card img"))
      if (!img.complete || img.naturalWidth === 0) __broken.push("frame with a broken image: " + img.src);
  requestAnimationFrame(frame);
})();
"""

# Every image shown has loaded; a lazy image that is not shown (a chart's every-window view,
# #all-NAME, until it is opened) is not fetched by design.
ALL_IMAGES_LOADED = ("() => [...document.images].every((i) => (i.loading === 'lazy' && !i.offsetParent)"
                     " || (i.complete && i.naturalWidth > 0))")
# Images load lazily (loading="lazy"): those on screen must be loaded, the rest need not be.
SHOWN_IMAGES_LOADED = """() => [...document.images].every((i) => {
  const r = i.getBoundingClientRect();
  return r.bottom < 0 || r.top > innerHeight || r.width === 0 || (i.complete && i.naturalWidth > 0);
})"""
POLL_URL = "/status/index.json"  # what an open page polls
CARD_IMAGES_LOADED = "() => [...document.querySelectorAll('.card img')].every((i) => i.complete && i.naturalWidth > 0)"


def missing_tool(path: str) -> str | None:
    """Why a system tool cannot be used, or None when it can."""
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return None
    return f"{path} is not installed (apt-get install chromium nginx-light)"


def require_tool(path: str) -> None:
    """Skip a test when a system tool is missing, but fail under CI, where it must be installed."""
    import pytest

    reason = missing_tool(path)
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def served_dir(prefix: str = "plotboard-page-") -> Path:
    """A fresh folder that a web server running as another user can reach (0755, under /tmp).

    pytest's tmp_path is 0700, which nginx's workers (nobody, when the tests run as root) cannot
    enter; the files plotboard writes inside must be world-readable on their own merits.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Nginx:
    """nginx running the repository's deploy/nginx.conf with @ROOT@, @LISTEN@ and @DAEMON@ (the
    port of a `plotboard run --serve` to proxy /metrics to; by default one nobody listens on) substituted.

    The main config written here only supplies what a distribution's nginx.conf would (pid,
    logs and temp paths under the prefix, mime types); the server block is the repository's
    file, unchanged apart from the two placeholders. As root, workers run as nobody, so the
    served files must really be world-readable.
    """

    def __init__(self, root: Path, prefix: Path, port: int | None = None, workers: int = 1,
                 access_log: bool = True, daemon: int | None = None, zoom: Path | None = None) -> None:
        self.root = root
        self.prefix = prefix
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        prefix.mkdir(parents=True, exist_ok=True)
        server = NGINX_CONF.read_text()
        assert "@ROOT@" in server and "@LISTEN@" in server and "@DAEMON@" in server, "deploy/nginx.conf lost its placeholders"
        server = server.replace("@ROOT@", str(root)).replace("@LISTEN@", f"127.0.0.1:{self.port}")
        server = server.replace("@DAEMON@", f"127.0.0.1:{daemon or free_port()}")
        server = server.replace("@ZOOM@", str(zoom or prefix / "zoom"))  # the board's zoom cache
        (prefix / "plotboard.conf").write_text(server)
        temp = prefix / "temp"
        temp.mkdir(exist_ok=True)
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        paths = "\n".join(
            f"    {kind}_temp_path {temp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(
            f"{user}worker_processes {workers};\n"
            f"pid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            f"    access_log {prefix / 'access.log' if access_log else 'off'};\n"
            f"{paths}\n"
            f"    include {prefix / 'plotboard.conf'};\n"
            "}\n"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "Nginx":
        assert self.proc is None, "nginx is already running"
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-e", str(self.prefix / "error.log"),
             "-c", str(self.conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                self.proc = None
                raise AssertionError(f"nginx exited with {proc.returncode}: {out}\n{self.error_log()}")
            return accepts(self.port)

        wait_for(up, 10, f"nginx to listen on 127.0.0.1:{self.port}")
        return self

    def stop(self) -> None:
        """Fast shutdown; returns once the port no longer accepts connections."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        wait_for(lambda: not accepts(self.port), 10, "nginx to stop listening")

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def launch_chromium(playwright: Any) -> Any:
    """The system Chromium, headless; Playwright never downloads a browser here."""
    reason = missing_tool(CHROMIUM)
    if reason:
        raise RuntimeError(reason)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def _asks_daemon(url: str) -> bool:
    """A request for the daemon's /events: without a daemon behind the page (a static host, or
    nginx with the daemon stopped) it fails, and the page polls instead; not a problem."""
    return urllib.parse.urlsplit(url).path.endswith("/events")


class PageLog:
    """What went wrong while a page was open: console errors, page errors, failed requests."""

    def __init__(self, page: Any) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed: list[str] = []
        self.documents: list[str] = []
        self.requests: list[tuple[str, str]] = []
        page.on("console", lambda m: m.type == "error" and not _asks_daemon((m.location or {}).get("url", ""))
                and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: not _asks_daemon(r.url) and self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and not _asks_daemon(r.url)
                and self.failed.append(f"{r.url} HTTP {r.status}"))
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        self.requests.append((request.resource_type, request.url))
        if request.resource_type == "document":
            self.documents.append(request.url)

    def problems(self) -> list[str]:
        return self.console_errors + self.page_errors + self.failed


def open_page(ctx: Any, url: str, ready: str = CARD_IMAGES_LOADED, timeout: float = 10_000) -> tuple[Any, PageLog]:
    """A new page of the browser context `ctx` at `url`, watching its images (WATCH_IMAGES) and
    logged (PageLog), once its first poll is answered and then `ready` (a JS function) holds."""
    page = ctx.new_page()
    page.add_init_script(WATCH_IMAGES)
    log = PageLog(page)
    with page.expect_response(lambda r: r.url.split("?")[0].endswith(POLL_URL), timeout=10_000):
        page.goto(url)
    page.wait_for_function(ready, timeout=timeout)
    return page, log
