"""Baseline (c): the on-demand idiom, a Flask route that renders per request.

Run under gunicorn with one worker per core: `BENCH_CSV=data.csv gunicorn -w 2 baseline_flask:app`.
It draws on a bare Figure (no pyplot), as matplotlib's own web-server example does, into
BytesIO, and returns it with send_file.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flask import Flask, send_file  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import reference  # noqa: E402

app = Flask(__name__)
CSV = Path(os.environ.get("BENCH_CSV", "data.csv"))


@app.route("/chart.png")
def chart():
    fig = Figure(figsize=reference.SIZE, dpi=reference.DPI)
    reference.reference(fig, [CSV])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return send_file(buf, mimetype="image/png")
