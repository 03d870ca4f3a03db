"""Zoom on demand behind a real nginx running deploy/nginx.conf (issue 26): /render/ is proxied
to `run --serve`, and the image is then sent by nginx itself from the daemon's cache folder
(X-Accel-Redirect to an internal location), so no byte passes through Python; nginx's workers
run as nobody, so the cache's files must really be readable by another user."""

from __future__ import annotations

import http.client

from browser import NGINX, Nginx, remove_tree, require_tool, served_dir
from conftest import chart, fast_board, free_port
from daemon_helpers import png_problem
from test_zoom_serve import PLOTS, custom, get


def test_nginx_proxies_render_and_sends_cached_images_itself(daemons):
    require_tool(NGINX)
    root = served_dir("plotboard-zoom-")
    server = None
    try:
        b = fast_board(root / "board", chart("lat", "plots:z", "data/a.txt", 'windows = ["1h"]\nzoom = true'),
                       plots=PLOTS)
        b.data("data/a.txt", "1 2 3\n")
        port = free_port()
        d = daemons(b, "--serve", str(port))
        d.wait_state("lat", state="ok")
        server = Nginx(b.output, root / "nginx", daemon=port, zoom=b.root / ".plotboard" / "zoom").start()
        query = "window=2h&end=1700000000&width=120"

        status, headers, body = get(server.port, f"/render/lat.png?{query}")  # drawn, then sent by nginx
        assert status == 200 and png_problem(body) is None, (status, headers, body[:300], server.error_log())
        assert headers["content-type"] == "image/png" and "x-accel-redirect" not in headers
        assert int.from_bytes(body[16:20], "big") == 120
        status, headers, again = get(server.port, f"/board/render/lat.png?{query}")  # cached; under /board/ too
        assert status == 200 and again == body, (status, headers)
        assert headers.get("cache-control") == "no-cache" and headers.get("x-content-type-options") == "nosniff", headers
        assert len(custom(b)) == 1

        # The daemon's own answer to nginx: a pointer into the cache folder and no bytes.
        status, headers, direct = get(port, f"/render/lat.png?{query}", {"X-Plotboard-Zoom-Files": "/_plotboard_zoom/"})
        assert status == 200 and direct == b"", (status, headers)
        target = headers["x-accel-redirect"]
        assert target.startswith("/_plotboard_zoom/") and target.endswith(".png")
        cached = b.root / ".plotboard" / "zoom" / target.rsplit("/", 1)[1]
        assert cached.read_bytes() == body
        assert get(server.port, target)[0] == 404  # internal: never reachable from outside
        assert get(port, f"/render/lat.png?{query}")[2] == body  # without nginx: the daemon sends the file

        for path in ("/render/", "/board/render/"):  # the page's probe, through nginx
            status, headers, text = get(server.port, path)
            assert status == 204 and text == b"", (path, status, headers, server.error_log())
        for path, code in [(f"/render/nope.png?{query}", 404), ("/render/lat.png?window=1h&end=nan", 400)]:
            status, _, text = get(server.port, path)
            assert status == code and text.count(b"\n") == 1, (path, status, text)
    finally:
        if server is not None:
            server.stop()
        remove_tree(root)
