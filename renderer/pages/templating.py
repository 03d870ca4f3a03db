"""The page's jinja2 templates: one environment per templates folder, a board's own templates
checked whenever the board file is loaded, and jinja2's errors as one line naming the template
file and line (never a traceback).

A board's own templates (`[board] templates`) are compiled, with every template they name
(`include`, `extends`, `import`), and rendered against a sample of the board (its charts pending,
ok and failed) when the board file is loaded: at the start of `run`, on SIGHUP and in each
`build`. A syntax error, an unknown filter or test, a missing template or an exception while
rendering is then a problem of the board file (exit 2 before anything is written; on SIGHUP
the old board stays). The environment that passed is the one the pages are written with, so
editing a template into a broken state changes nothing until the next load. What only the real
data brings out fails at write time as TemplateFailed: logged, and the previous index.html stays.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from renderer.errors import PublishError
from renderer.render.jobs import describe as describe_exception

ENTRY = "index.html"
GROUP_PAGE = "group.html"  # a split board's page of one group (renderer.pages.model.group_contexts)
CARD = "_card.html"  # one chart's card, rendered once per change of the chart (renderer.pages.model.Pages)
MAX_MESSAGE = 400  # characters of a template error's text


class TemplateFailed(PublishError):
    """A page could not be rendered from the board's templates."""


def site_dir() -> Path:
    """The built-in site/: inside the installed package, or at the root of a source checkout."""
    package = Path(__file__).resolve().parent.parent  # renderer/
    installed = package / "site"
    return installed if installed.is_dir() else package.parent / "site"


# A feature's page code, named by the page and copied to static/ only on a board that uses it.
FEATURE_STATIC = {"history": ("history.css", "history.js"), "zoom": ("zoom.css", "zoom.js")}


def static_files(features: Iterable[str] | None = None) -> dict[str, bytes]:
    """The built-in static assets, by name: those of FEATURE_STATIC only for the `features`
    given (None: every one)."""
    folder = site_dir() / "static"
    if not folder.is_dir():
        return {}
    left_out = {n for f, names in FEATURE_STATIC.items() if features is not None and f not in features for n in names}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in left_out}


def folders(templates: Path | None) -> list[Path]:
    """Where templates are looked up, in order: the board's own, then the built-in ones."""
    return ([templates] if templates else []) + [site_dir() / "templates"]


def make_environment(templates: Path | None, auto_reload: bool = True) -> Any:
    import jinja2

    return _environment_class()(
        loader=jinja2.FileSystemLoader([str(f) for f in folders(templates)]),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=auto_reload,
    )


@lru_cache(maxsize=1)
def _environment_class() -> type:
    """jinja2.Environment, with `c.state` on a dict looked up as c["state"] first: jinja2 tries
    the attribute first and catches the AttributeError, which is most of a card's rendering time.
    The result is the same, since a key that is no attribute of dict is what jinja2 returns."""
    import jinja2

    dict_attributes = frozenset(dir(dict))

    class Environment(jinja2.Environment):
        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict and attribute not in dict_attributes:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

    return Environment


@lru_cache(maxsize=8)
def _plain_environment(templates: Path | None) -> Any:
    return make_environment(templates)


_checked: dict[Path, Any] = {}  # a templates folder -> the environment that passed its last check


def environment(templates: Path | None) -> Any:
    """The environment index.html is rendered with: for a board's own templates, the one that
    passed the check when the board file was last loaded."""
    checked = _checked.get(templates) if templates is not None else None
    return checked if checked is not None else _plain_environment(templates)


def render(templates: Path | None, context: dict[str, Any], entry: str = ENTRY) -> str:
    """The page's text (index.html, or `entry`); raises TemplateFailed naming the template file and line."""
    return renderer(templates, entry)(context)


def renderer(templates: Path | None, entry: str) -> Callable[[dict[str, Any]], str]:
    """A function rendering `entry` with a context, for many contexts in a row: the template is
    looked up (and its file looked at for changes) once; raises TemplateFailed naming the
    template file and line."""
    try:
        template = environment(templates).get_template(entry)
    except Exception as exc:  # noqa: BLE001 - jinja2's errors, and whatever a template's expressions raise
        raise _failed(entry, exc, templates) from None

    def render_one(context: dict[str, Any]) -> str:
        try:
            return template.render(**context)
        except Exception as exc:  # noqa: BLE001 - as above
            raise _failed(entry, exc, templates) from None

    return render_one


def _failed(entry: str, exc: BaseException, templates: Path | None) -> TemplateFailed:
    return TemplateFailed(f"cannot render {entry}: {where_and_what(exc, folders(templates))}")


def check(templates: Path, contexts: Iterable[dict[str, Any]]) -> str | None:
    """Compile the board's templates and render index.html (a group page for a context with a
    `group`) with each sample context; None when all is well (the environment is then the one
    the pages use), else the one-line problem."""
    env = make_environment(templates, auto_reload=False)  # loads each template once: what passed stays
    try:
        seen: set[str] = set()
        for entry in (ENTRY, GROUP_PAGE, CARD):
            _compile_all(env, entry, seen)
        for context in contexts:
            env.get_template(GROUP_PAGE if "group" in context else ENTRY).render(**context)
    except _Missing as missing:
        return missing.text
    except Exception as exc:  # noqa: BLE001 - see render()
        return where_and_what(exc, folders(templates))
    _checked[templates] = env
    return None


class _Missing(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _compile_all(env: Any, name: str, seen: set[str]) -> None:
    """Compile a template and, recursively, every template it names literally."""
    import jinja2
    from jinja2 import nodes

    if name in seen:
        return
    seen.add(name)
    template = env.get_template(name)  # compiles: syntax errors, unknown filters and tests
    source = env.loader.get_source(env, name)[0]
    kinds = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    for node in env.parse(source, name, template.filename).find_all(kinds):
        ref = node.template
        if not isinstance(ref, nodes.Const) or not isinstance(ref.value, str):
            continue  # a name computed while rendering: the sample renders try it
        try:
            _compile_all(env, ref.value, seen)
        except jinja2.TemplateNotFound:
            if not getattr(node, "ignore_missing", False):
                raise _Missing(_one_line(f"{template.filename}, line {node.lineno}: "
                                         f"no template {ref.value!r} in {_search_text(env)}")) from None


def _search_text(env: Any) -> str:
    return " or ".join(env.loader.searchpath)


def where_and_what(exc: BaseException, search: list[Path]) -> str:
    """'FILE, line N: message' for an error raised while compiling or rendering a template."""
    import jinja2

    filename, lineno = None, None
    if isinstance(exc, jinja2.TemplateSyntaxError):  # also TemplateAssertionError (unknown filter)
        filename, lineno, message = exc.filename, exc.lineno, exc.message or "syntax error"
    elif isinstance(exc, jinja2.TemplateNotFound):
        names = getattr(exc, "templates", None) or [exc.name]
        message = f"no template {', '.join(map(repr, names))} in {' or '.join(map(str, search))}"
    else:
        message = describe_exception(exc)
    if filename is None:  # at render time: the innermost frame that is in a template file
        roots = [str(folder) for folder in search]
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if any(frame.filename.startswith(root + "/") for root in roots):
                filename, lineno = frame.filename, frame.lineno
                break
    place = f"{filename or ENTRY}, line {lineno}" if lineno else str(filename or ENTRY)
    return _one_line(f"{place}: {message}")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"
