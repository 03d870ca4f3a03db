"""User errors: turned into a message and an exit status only by the CLI."""


class PlotboardError(Exception):
    """An error the user can fix; the CLI prints its message and exits with `exit_code`."""

    exit_code = 1


class ConfigError(PlotboardError):
    """The board file is invalid; every problem found is listed, each naming its key."""

    exit_code = 2

    def __init__(self, path: object, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = [f"{self.path}: {p}" for p in problems]
        super().__init__("\n".join(lines))


class NoBoardFile(PlotboardError):
    """There is no board file where -c (by default ./plotboard.toml) points."""

    exit_code = 2


class PublishError(PlotboardError):
    """A file could not be written to the output folder."""

    exit_code = 1
