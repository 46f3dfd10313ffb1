"""mkdocs hooks (``hooks:`` in mkdocs.yml): README.md is the site's home page.

The pages of ``docs/`` link to ``../README.md``, which is right on GitHub and in an editor but
lies outside ``docs_dir``, where mkdocs cannot follow it. These hooks add README.md to the site
as ``index.md`` and resolve the links between the two against the files' real places: a link
to the README from a page of ``docs/`` goes to ``index.md``, and a link from the README to a
page of ``docs/`` (``docs/guides.md``) goes to that page. Every other link is left to mkdocs'
own checks, so a link to a missing page, or to any other file outside ``docs/``, still fails
``mkdocs build --strict``.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

HOME = "index.md"
# the target of an inline Markdown link or image: [text](target) or [text](target "title")
LINK = re.compile(r"(\]\()(?P<target>[^)\s]+)")


def _readme(config) -> Path:
    return Path(config.config_file_path).resolve().parent / "README.md"


def on_files(files, config):
    if files.get_file_from_path(HOME) is not None:
        raise PluginError(f"docs/{HOME} exists, but README.md is the home page (mkdocs_hooks.py)")
    files.append(File.generated(config, HOME, abs_src_path=str(_readme(config))))
    return files


def on_page_markdown(markdown, page, config, files):
    docs_dir, readme = Path(config.docs_dir).resolve(), _readme(config)
    here = Path(page.file.abs_src_path).resolve().parent
    site_dir = posixpath.dirname(page.file.src_uri)

    def resolve(match: re.Match) -> str:
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:|^[/#]", target, re.IGNORECASE):
            return match[0]  # a URL, an absolute path or an anchor: mkdocs checks it
        path, _, anchor = target.partition("#")
        real = (here / path).resolve()
        if real == readme:
            uri = HOME
        elif page.file.src_uri == HOME and real.is_relative_to(docs_dir):
            uri = real.relative_to(docs_dir).as_posix()
        else:
            return match[0]
        new = posixpath.relpath(uri, site_dir or ".")
        return match[1] + new + (f"#{anchor}" if anchor else "")

    return LINK.sub(resolve, markdown)
