"""A tiny XML tree with line numbers, for rule files.

Wazuh rule files are not single-rooted XML documents (several ``<group>`` and ``<var>``
elements sit side by side), and every error we report must name its line, which
``xml.etree`` does not keep. So rule files are parsed with expat into ``Node`` objects that
remember where each element starts. Expat neither fetches external entities nor expands
unbounded internal ones (billion-laughs protection in expat >= 2.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat

from trailwarden.common.errors import RuleError

_ROOT = "trailwarden-rules-root"
_DECLARATION = re.compile(r"<\?xml[^>]*\?>")


@dataclass(slots=True)
class Node:
    """One XML element: tag, attributes, text (stripped) and children, with its line."""

    tag: str
    attrs: dict[str, str]
    line: int
    text: str = ""
    children: list[Node] = field(default_factory=list)


def parse_nodes(text: str, file: str) -> list[Node]:
    """The top-level elements of a rule file; RuleError with file:line if not well-formed."""
    # Blank out the declaration (keeping its length) so line numbers stay true once wrapped.
    text = _DECLARATION.sub(lambda m: " " * len(m.group(0)), text)
    wrapped = f"<{_ROOT}>{text}</{_ROOT}>"
    parser = expat.ParserCreate()
    stack: list[Node] = [Node(_ROOT, {}, 1)]
    texts: list[list[str]] = [[]]

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = Node(tag, dict(attrs), parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)
        texts.append([])

    def end(tag: str) -> None:
        node = stack.pop()
        node.text = "".join(texts.pop()).strip()

    def chars(data: str) -> None:
        texts[-1].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(wrapped, True)
    except expat.ExpatError as exc:
        raise RuleError(
            f"not well-formed XML: {expat.ErrorString(exc.code)}", file=file, line=exc.lineno
        ) from exc
    return stack[0].children[0].children
