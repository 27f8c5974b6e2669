"""One pass over libyaml's events for the common manifest: plain mappings, lists and scalars.

The general path (:func:`runner.manifest.guard.compose_guarded`) reads the text three times: the
guard streams every event to bound depth and size, libyaml composes a node tree, and
:mod:`runner.manifest.yamlpos` walks that tree into plain data with positions. For a 10,000-shot manifest
that is most of ``previz validate``'s time. A manifest without anchors, aliases, explicit tags or
merge keys needs none of the node tree: here the data, every position and every duplicate-key
problem are built straight from the event stream, with the same depth and size limits.

This reader only ever answers for documents it reads exactly as the general path would. At the
first thing outside that subset — an anchor, an alias, a tag, a merge key, a key that is a list or
mapping, a value that needs more than the core scalar constructors, a second document, a limit
reached or any YAML error — it gives up and returns None, and the general path reads the text
again and words every message as it always has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

from runner.errors import Problem
from runner.manifest import yamlpos
from runner.manifest.yamlpos import _PLAIN, MAX_NODES, Loc, Located, Pos, format_loc

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"


class _GiveUp(Exception):
    """Outside the plain subset: the general path reads this document."""


class _Frame:
    """An open list or mapping: where it sits and, for a mapping, the key waiting for its value."""

    __slots__ = ("first_line", "items", "key", "key_loc", "loc")

    def __init__(self, items: dict[str, Any] | list[Any], loc: Loc) -> None:
        self.items = items
        self.loc = loc
        self.key: str | None = None
        self.key_loc: Loc = ()  # the pending key's loc, shared by ``keys`` and ``values``
        self.first_line: dict[str, int] = {}  # each key's first line, for duplicate-key messages

    def wants_key(self) -> bool:
        return self.key is None and type(self.items) is dict


def read_plain(text: str, file: str, max_depth: int) -> Located | None:
    """The document as :func:`runner.manifest.yamlpos.load_located` reads it, or None outside the subset
    (``max_depth`` nested lists and mappings at most: deeper is for the guard to word)."""
    loader_class = yamlpos._CLoader
    if loader_class is None:  # no libyaml: the pure-Python events would not be faster
        return None
    try:
        loader = loader_class(text)
    except yaml.YAMLError:
        return None
    try:
        return _Reader(loader, file, max_depth).read()
    except (_GiveUp, yaml.YAMLError):
        return None
    finally:
        loader.dispose()


class _Reader:
    """Builds data, positions and duplicate-key problems in the order the node walk would."""

    def __init__(self, loader: yaml.SafeLoader, file: str, max_depth: int) -> None:
        self.loader = loader
        self.file = file
        self.max_depth = max_depth
        self.values: dict[Loc, Pos] = {}
        self.keys: dict[Loc, Pos] = {}
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.count = 0
        self.documents = 0
        self._tags: dict[str, str] = {}  # plain scalar text → resolved tag (keys repeat 10,000 times)
        self._resolve: Callable[[type[ScalarNode], str, tuple[bool, bool]], str] = loader.resolve

    def read(self) -> Located:
        handlers = _HANDLERS  # module-level, not bound methods: no reader ↔ table reference cycle
        get_event: Callable[[], Event] = self.loader.get_event
        event = get_event()
        while type(event) in handlers:  # StreamEndEvent ends the loop
            handlers[type(event)](self, event)
            event = get_event()
        if self.documents != 1:  # an empty stream: the general path says so
            raise _GiveUp
        return Located(self.root, self.values, self.keys, tuple(self.problems))

    def _document(self, event: DocumentStartEvent) -> None:
        self.documents += 1
        if self.documents > 1:
            raise _GiveUp

    def _end(self, event: Event) -> None:
        self.stack.pop()

    def _mapping(self, event: MappingStartEvent) -> None:
        self._start(event, {})

    def _sequence(self, event: SequenceStartEvent) -> None:
        self._start(event, [])

    def _start(self, event: CollectionStartEvent, items: dict[str, Any] | list[Any]) -> None:
        _plain_node(event)
        if self.stack and self.stack[-1].wants_key():  # a list or mapping as a key
            raise _GiveUp
        if len(self.stack) >= self.max_depth:
            raise _GiveUp
        self.stack.append(_Frame(items, self._place(items, event)))

    def _scalar(self, event: ScalarEvent) -> None:
        _plain_node(event)
        if self.stack and self.stack[-1].wants_key():
            self._key(self.stack[-1], event)
        else:
            self._place(self._construct(event), event)

    def _place(self, value: Any, event: NodeEvent) -> Loc:
        """Put a value where the document is: the root, the next list item or the pending key."""
        self.count += 1
        if self.count > MAX_NODES:
            raise _GiveUp
        loc: Loc = ()
        if not self.stack:
            self.root = value
        else:
            frame = self.stack[-1]
            if type(frame.items) is list:
                loc = (*frame.loc, len(frame.items))
                frame.items.append(value)
            else:
                assert frame.key is not None and type(frame.items) is dict
                loc = frame.key_loc
                frame.items[frame.key] = value
                frame.key = None
        self.values[loc] = _pos(event)
        return loc

    def _key(self, frame: _Frame, event: ScalarEvent) -> None:
        key = event.value
        if event.implicit[0] and self._tag(key) not in _PLAIN:  # `<<` merges, `=` is special
            raise _GiveUp
        pos = _pos(event)
        loc = (*frame.loc, key)
        if key in frame.items:  # its first value is in: a key's value comes before the next key
            message = f"duplicate key '{key}' (first given on line {frame.first_line[key]})"
            self.problems.append(Problem(self.file, pos[0], pos[1], format_loc(loc), message))
        else:
            frame.first_line[key] = pos[0]
        self.keys[loc] = pos
        frame.key, frame.key_loc = key, loc

    def _construct(self, event: ScalarEvent) -> Any:
        tag = self._tag(event.value) if event.implicit[0] else _STR
        if tag == _STR:
            return event.value
        if tag == _NULL:
            return None
        construct = _PLAIN.get(tag)
        if construct is None:
            raise _GiveUp
        # no marks: a constructor that fails sends the document to the general path, which words it
        return construct(self.loader, ScalarNode(tag, event.value, None, None, event.style))

    def _tag(self, text: str) -> str:
        """The core-schema tag of a plain scalar (the loader's own resolver, asked once per text)."""
        tag = self._tags.get(text)
        if tag is None:
            tag = self._tags[text] = self._resolve(ScalarNode, text, (True, False))
        return tag


def _plain_node(event: ScalarEvent | CollectionStartEvent) -> None:
    """Anchors (and so aliases, merges) and explicit tags are the general path's business."""
    if event.anchor is not None or event.tag is not None:
        raise _GiveUp


def _pos(event: Event) -> Pos:
    mark = event.start_mark
    assert mark is not None  # the parser marks every event
    return (mark.line + 1, mark.column + 1)


def _ignore(reader: _Reader, event: Event) -> None:
    pass


def _give_up(reader: _Reader, event: Event) -> None:
    raise _GiveUp


#: What each event does; StreamEndEvent is not here, and ends the reading.
_HANDLERS: dict[type[Event], Callable[[_Reader, Any], None]] = {
    ScalarEvent: _Reader._scalar,
    MappingStartEvent: _Reader._mapping,
    SequenceStartEvent: _Reader._sequence,
    MappingEndEvent: _Reader._end,
    SequenceEndEvent: _Reader._end,
    DocumentStartEvent: _Reader._document,
    DocumentEndEvent: _ignore,
    StreamStartEvent: _ignore,
    AliasEvent: _give_up,
}
