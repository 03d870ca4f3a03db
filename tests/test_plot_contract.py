"""The plot contract's newcomer mistakes fail the render saying so, instead of publishing a
blank image as ok: a plot that drew nothing on its figure, or drew with pyplot."""

from __future__ import annotations

from conftest import PLOTS, chart, fast_board

BAD_PLOTS = PLOTS + '''
def nothing(fig, inputs, **params):
    values = [float(v) for v in open(inputs[0]).read().split()]  # reads, but forgets to draw

def with_pyplot(fig, inputs, **params):
    import matplotlib.pyplot as plt
    plt.plot([1, 3, 2])

def also_pyplot(fig, inputs, **params):
    import matplotlib.pyplot as plt
    fig.add_subplot().plot([1, 2])
    plt.figure()
'''


def test_a_plot_that_draws_nothing_or_draws_with_pyplot_fails_saying_so(tmp_path):
    board = fast_board(tmp_path / "b", chart("good", inputs="data/a.txt"), chart("blank", "plots:nothing", "data/a.txt"),
                       chart("py1", "plots:with_pyplot"), chart("py2", "plots:with_pyplot"),
                       chart("py3", "plots:also_pyplot"), plots=BAD_PLOTS)
    board.file.write_text(board.file.read_text().replace("workers = 2", "workers = 1"))  # one worker: one pyplot
    board.data("data/a.txt", "1 2 3\n")
    result = board.cli("build")
    assert result.returncode == 1, result.stderr
    assert board.chart("good")["state"] == "ok"
    blank = board.chart("blank")
    assert blank["state"] == "error" and "drew nothing on the figure it was given" in blank["error"]
    for name in ("py1", "py2", "py3"):
        entry = board.chart(name)
        assert entry["state"] == "error", entry
        # Each render's pyplot figure is closed after it: the next one in the same worker is figure 1 again.
        assert "drew on pyplot's figure 1" in entry["error"] and "instead of the figure it was given" in entry["error"]
    assert not (board.output / "blank.png").exists() and not (board.output / "py1.png").exists()
