"""Which model files a ComfyUI workflow needs.

Pure Python (no Django). Entry points: scan_workflow, scan_file; whether the server has a file is
storage.ModelRoots' answer. The formats it reads and the choices it makes (muted nodes, subgraphs,
linked widgets, metadata, files of unknown folder, files nodes download themselves, stackers,
unsafe paths, symlinks) are written down in docs/scanner.md.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from presets.catalogue import unsafe_url_reason
from presets.sizes import human_size
from storage import canonical_folder, is_unsafe_path

from .loaders import (
    CONTROL_AFTER_GENERATE_VALUES,
    DICT_ROW_NODES,
    GENERIC_INPUT_NAMES,
    LOADERS,
    MANAGED_BY_NODE,
    MODEL_EXTENSIONS,
    SKIP_TYPES,
    STACKERS,
    SWITCH_OFF_VALUES,
    folder_from_input,
    folder_from_type,
)

__all__ = [
    "WorkflowError",
    "ModelRef",
    "ScanResult",
    "scan_workflow",
    "scan_file",
    "normalize_model_path",
    "MAX_WORKFLOW_BYTES",
]

#: scan_file refuses larger files (real workflows are KBs to a few MBs).
MAX_WORKFLOW_BYTES = 64 * 1024 * 1024
#: Deeper subgraph nesting than this is treated as malformed (and never recursed into).
MAX_SUBGRAPH_DEPTH = 32
#: A "model name" longer than this is not one.
MAX_NAME_LENGTH = 4096
#: Node visits per workflow (subgraph instances are expanded once per instance, so a
#: crafted file nesting many instances could otherwise take exponential time).
MAX_NODE_VISITS = 100_000

_MUTED, _BYPASSED = 2, 4
_INACTIVE_SUFFIXES = (" (muted)", " (bypassed)", " (off)")
_EXT_RE = re.compile(r"\.[A-Za-z0-9_]{1,16}$")
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class WorkflowError(ValueError):
    """The data is not a readable ComfyUI workflow; the message says why."""


@dataclass(frozen=True)
class ModelRef:
    name: str  # as the workflow writes it, e.g. "SDXL\\sd_xl_base_1.0.safetensors"
    directory: str  # canonical ComfyUI folder: "checkpoints", "text_encoders", ...; "" when the workflow does not say
    path: str  # normalised relative path inside `directory`, forward slashes
    nodes: tuple[str, ...]  # who uses it, e.g. ("4 CheckpointLoaderSimple", "subgraph 12 > 7 LoraLoader")
    url: str | None = None  # from properties.models / top-level models when given
    hash: str | None = None  # e.g. "sha256:abcd..." when the metadata gives one
    guess: str | None = None  # no directory: the folder its node type or file name suggests, if one
    managed: str | None = None  # the node downloads it by itself: what and where (loaders.MANAGED_BY_NODE)

    @property
    def folder_unknown(self) -> bool:
        """The workflow names the file but not its folder: the disk, the catalogue or
        ``guess`` may tell (templates_scan.library resolves it in that order)."""
        return not self.directory and self.managed is None

    @property
    def unsafe(self) -> bool:
        """Absolute, drive-lettered or ``..`` path: never looked up on disk."""
        return is_unsafe_path(self.path)

    @property
    def inactive(self) -> bool:
        """Every node using it is muted/bypassed (or a switched-off entry); False if none does."""
        return bool(self.nodes) and all(n.endswith(_INACTIVE_SUFFIXES) for n in self.nodes)


@dataclass
class ScanResult:
    format: str  # "ui" or "api"
    models: list[ModelRef]  # deduplicated by (directory, path), sorted by (directory, path)
    warnings: list[str] = field(default_factory=list)  # skipped nodes, unresolved values...


# ------------------------------------------------------------------------------ paths


def normalize_model_path(name: str) -> str:
    """``"SDXL\\\\a.safetensors"`` -> ``"SDXL/a.safetensors"``; drops empty and ``.`` parts.

    Absolute paths keep a leading ``/`` (and drive letters stay) so :func:`is_unsafe_path`
    still sees them; ``..`` is kept for the same reason.
    """
    s = name.strip().replace("\\", "/")
    lead = "/" if s.startswith("/") else ""
    parts = [p for p in s.split("/") if p not in ("", ".")]
    return lead + "/".join(parts)


def _looks_like_file(value: str) -> bool:
    """A table loader's value names a file (has an extension): not "None", "taesd", "pixel_space"."""
    return bool(_EXT_RE.search(value.replace("\\", "/").rsplit("/", 1)[-1]))


def _looks_like_model(value: str) -> bool:
    return value.lower().endswith(MODEL_EXTENSIONS)


def _folder_of(directory: str) -> tuple[str, str] | None:
    """Metadata ``directory`` -> (canonical folder, sub-path prefix); None when unusable.

    ``"clip"`` -> ``("text_encoders", "")``; ``"checkpoints/SDXL"`` -> ``("checkpoints", "SDXL")``.
    """
    d = normalize_model_path(directory)
    if not d or is_unsafe_path(d):
        return None
    head, _, rest = d.partition("/")
    return canonical_folder(head), rest


def _format_hash(h: Any, h_type: Any) -> str | None:
    if not isinstance(h, str) or not h.strip():
        return None
    h = h.strip()
    if ":" in h:
        return h
    if isinstance(h_type, str) and h_type.strip():
        return f"{h_type.strip().lower()}:{h}"
    if _HEX64_RE.match(h):
        return f"sha256:{h.lower()}"
    return h


def _http_url(url: Any) -> str | None:
    """A model's download URL, if the catalogue would accept it (one rule: presets.catalogue's)."""
    if isinstance(url, str) and not unsafe_url_reason(url.strip()):
        return url.strip()
    return None


# --------------------------------------------------------------------------- collector


class _Acc:
    __slots__ = ("name", "directory", "path", "nodes", "url", "hash", "guess", "managed")

    def __init__(self, name: str, directory: str, path: str, managed: str | None):
        self.name, self.directory, self.path, self.managed = name, directory, path, managed
        self.nodes: dict[str, None] = {}  # ordered set
        self.url: str | None = None
        self.hash: str | None = None
        self.guess: str | None = None


#: A ref's key in the collector: (directory, path, managed by its node). Directory "": not known.
_Key = tuple[str, str, bool]


class _Collector:
    def __init__(self, fmt: str):
        self.format = fmt
        self.refs: dict[_Key, _Acc] = {}
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        if len(self.warnings) < 500:
            self.warnings.append(message)

    def add(
        self, name: str, directory: str, label: str | None, guess: str | None = None, managed: str | None = None
    ) -> _Key:
        key = (directory, normalize_model_path(name), managed is not None)
        acc = self.refs.get(key)
        if acc is None:
            acc = self.refs[key] = _Acc(name, directory, key[1], managed)
        if label is not None:
            acc.nodes.setdefault(label, None)
        if acc.guess is None:
            acc.guess = guess
        return key

    def settle(self, key: _Key, folder: str, name: str) -> _Key:
        """The workflow's metadata says which folder a file of unknown folder is in: move it there."""
        new = self.add(name, folder, None)
        acc = self.refs.pop(key, None)
        if acc is None:  # moved already, by another entry naming the same file
            return new
        target = self.refs[new]
        for label in acc.nodes:
            target.nodes.setdefault(label, None)
        target.url, target.hash = target.url or acc.url, target.hash or acc.hash
        return new

    def merge_meta(self, key: _Key, entry: dict) -> None:
        acc = self.refs[key]
        if acc.url is None:
            acc.url = _http_url(entry.get("url"))
        if acc.hash is None:
            acc.hash = _format_hash(entry.get("hash"), entry.get("hash_type"))

    def merge_workflow_models(self, models: Any) -> None:
        """Top-level ``models``: enrich refs with the same directory and path (else same file
        name); entries no node uses become refs of their own (empty ``nodes``)."""
        if models is None:
            return
        if not isinstance(models, list):
            self.warn("top-level 'models' is not a list: ignored")
            return
        for entry in models:
            meta = _model_entry(entry)
            if meta is None:
                self.warn(f"top-level models entry ignored (needs string 'name' and 'directory'): {_short(entry)}")
                continue
            folder, name = meta
            path = normalize_model_path(name)
            if (folder, path, False) in self.refs:
                self.merge_meta((folder, path, False), entry)
                continue
            if ("", path, False) in self.refs:
                self.merge_meta(self.settle(("", path, False), folder, name), entry)
                continue
            base = path.rsplit("/", 1)[-1]
            matches = [k for k in self.refs if k[0] in (folder, "") and not k[2] and k[1].rsplit("/", 1)[-1] == base]
            if matches:
                for k in matches:
                    self.merge_meta(self.settle(k, folder, self.refs[k].name) if k[0] == "" else k, entry)
            else:
                self.merge_meta(self.add(name, folder, None), entry)

    def result(self) -> ScanResult:
        """The refs, a file of unknown folder joined to the ref of the same path another node
        loads from a known folder (when exactly one does)."""
        folders: dict[str, list[str]] = {}
        for directory, path, managed in self.refs:
            if directory and not managed:
                folders.setdefault(path, []).append(directory)
        for key in [k for k in self.refs if not k[0] and not k[2] and len(folders.get(k[1], ())) == 1]:
            self.settle(key, folders[key[1]][0], self.refs[key].name)
        models = [
            ModelRef(a.name, a.directory, a.path, tuple(a.nodes), a.url, a.hash, a.guess, a.managed)
            for _, a in sorted(self.refs.items())
        ]
        return ScanResult(self.format, models, self.warnings)


def _model_entry(entry: Any) -> tuple[str, str] | None:
    """A ``{name, directory, ...}`` metadata entry -> (canonical folder, name incl. sub-path)."""
    if not isinstance(entry, dict):
        return None
    name, directory = entry.get("name"), entry.get("directory")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        return None
    if not isinstance(directory, str):
        return None
    folder = _folder_of(directory)
    if folder is None:
        return None
    head, prefix = folder
    return head, (f"{prefix}/{name}" if prefix else name)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unwrap(value: Any) -> Any:
    """pysssss's loaders store ``{"content": name, "image": ...}``: the name."""
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return value


def _strings(value: Any, row: tuple[str, str, str] | None, depth: int = 0):
    """(string, off, folder or None) in a widget value: the value itself, pysssss's content, a
    row dict of a :data:`DICT_ROW_NODES` node (its folder, off when its switch is False), or
    strings nested in lists and objects of custom widgets."""
    if isinstance(value, str):
        yield value, False, None
    elif isinstance(value, dict):
        if row is not None and isinstance(value.get(row[1]), str):
            yield value[row[1]], value.get(row[2]) is False, row[0]
        elif isinstance(value.get("content"), str):
            yield value["content"], False, None
        elif depth < 4:
            for item in value.values():
                yield from _strings(item, row, depth + 1)
    elif isinstance(value, list) and depth < 4:
        for item in value:
            yield from _strings(item, row, depth + 1)


def _switched_off(value: Any) -> bool:
    """A stacker row's switch is off ("Off", False: loaders.SWITCH_OFF_VALUES)."""
    return isinstance(value, (str, bool)) and value in SWITCH_OFF_VALUES


def _certain_folder(ctype: str, input_name: str | None) -> str | None:
    """The folder an input's name says (``lora_name``, ``clip_name2``...); generic names say none."""
    if input_name is None or input_name.lower() in GENERIC_INPUT_NAMES:
        return None
    return folder_from_input(ctype, input_name)


def _guess(ctype: str, value: str) -> str | None:
    """The folder the node type suggests, else the file name (``..._vae.safetensors``): a last resort."""
    stem = value.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return folder_from_type(ctype) or folder_from_type(stem)


#: LOADERS by input name: class_type -> {input name: folder or None}.
_TABLE: dict[str, dict[str, str | None]] = {ctype: dict(widgets) for ctype, widgets in LOADERS.items()}

#: Per value found in a node: (input name or None, value, table folder or None, switched off).
_Candidate = tuple[str | None, Any, str | None, bool]


def _node_refs(out: _Collector, label: str, ctype: str, candidates: list[_Candidate]) -> dict[str, _Key | None]:
    """Record every model file among a node's values; return each string value -> its ref key
    (None: not a file), against which the node's properties.models entries are matched.

    A file's folder: the loader table's (or a stacker's row), else what its input name says; a
    node that downloads its files itself (:data:`MANAGED_BY_NODE`) has them recorded as managed;
    any other string with a model-file extension is recorded with folder unknown and a guess.
    """
    selected: dict[str, _Key | None] = {}
    managed = MANAGED_BY_NODE.get(ctype)
    row = DICT_ROW_NODES.get(ctype)
    for name, value, folder, row_off in candidates:
        if isinstance(value, str):
            if folder is None and not _looks_like_model(value):  # the common case, kept short
                selected.setdefault(value, None)
                continue
            found: Any = ((value, False, None),)
        elif isinstance(value, (list, dict)):
            found = _strings(value, row)
        else:
            continue
        for text, off, row_folder in found:
            if not text.strip() or len(text) > MAX_NAME_LENGTH:
                continue
            folder = row_folder or folder
            if not (_looks_like_file(text) if folder else _looks_like_model(text)):
                selected.setdefault(text, None)
                continue
            node_label = label + (" (off)" if off or row_off else "")
            if managed is not None:
                selected[text] = out.add(text, "", node_label, managed=managed)
                continue
            folder = folder or _certain_folder(ctype, name)
            if folder:
                selected[text] = out.add(text, folder, node_label)
            else:
                selected[text] = out.add(text, "", node_label, guess=_guess(ctype, text))
    return selected


def _stacker_rows(ctype: str, named: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """A stacker node's rows: file input name -> (folder, switched off)."""
    stacker = STACKERS.get(ctype)
    if stacker is None:
        return {}
    return {
        file_input: (stacker.folder, switch is not None and _switched_off(named.get(switch)))
        for file_input, switch in stacker.rows
    }


def _with_rows(ctype: str, candidates: list[_Candidate]) -> list[_Candidate]:
    """Candidates with a stacker's rows given its folder and switch."""
    if ctype not in STACKERS:
        return candidates
    rows = _stacker_rows(ctype, {name: value for name, value, _, _ in candidates if name is not None})
    if not rows:
        return candidates
    return [
        (name, value, rows[name][0], rows[name][1]) if name in rows else (name, value, folder, off)
        for name, value, folder, off in candidates
    ]


# --------------------------------------------------------------------------- parsing


def _parse(data: Any) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
    elif isinstance(data, str):
        data = data.lstrip("\ufeff")
    else:
        return data
    try:
        return json.loads(data)
    except RecursionError:
        raise WorkflowError("JSON is nested too deeply to be a workflow") from None
    except json.JSONDecodeError as e:
        raise WorkflowError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, TypeError) as e:  # bad encoding, over-long integer literals...
        raise WorkflowError(f"invalid JSON: {e}") from None


def scan_workflow(data: Any) -> ScanResult:
    """Scan a workflow given as bytes, str or an already-parsed dict.

    Raises :class:`WorkflowError` for malformed JSON or anything that is not a workflow.
    """
    wf = _parse(data)
    if not isinstance(wf, dict):
        raise WorkflowError(f"not a ComfyUI workflow: expected a JSON object, got {_json_type(wf)}")
    try:
        if "nodes" in wf:
            return _scan_ui(wf)
        inner = wf.get("workflow")
        if isinstance(inner, dict) and "nodes" in inner:
            return _scan_ui(inner)
        api = {k: v for k, v in wf.items() if isinstance(v, dict) and "class_type" in v}
        if not api and isinstance(wf.get("prompt"), dict):
            api = {k: v for k, v in wf["prompt"].items() if isinstance(v, dict) and "class_type" in v}
        if api:
            return _scan_api(api)
    except RecursionError:
        raise WorkflowError("workflow is nested too deeply") from None
    raise WorkflowError("not a ComfyUI workflow: no 'nodes' list and no API-format entries with 'class_type'")


def scan_file(path: str | os.PathLike) -> ScanResult:
    """Read and scan one workflow file; :class:`WorkflowError` messages start with its name."""
    p = Path(path)
    label = p.name or str(p)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_WORKFLOW_BYTES + 1)
    except OSError as e:
        raise WorkflowError(f"{label}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_WORKFLOW_BYTES:
        raise WorkflowError(f"{label}: larger than {human_size(MAX_WORKFLOW_BYTES)}, not scanned")
    try:
        return scan_workflow(raw)
    except WorkflowError as e:
        raise WorkflowError(f"{label}: {e}") from None


def _json_type(value: Any) -> str:
    return {
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------- API


def _scan_api(nodes: dict) -> ScanResult:
    out = _Collector("api")
    for node_id, node in nodes.items():
        ctype = node.get("class_type")
        if not isinstance(ctype, str) or not ctype:
            out.warn(f"node {node_id}: 'class_type' is not a string: skipped")
            continue
        inputs = node.get("inputs")
        if inputs is None:
            continue
        if not isinstance(inputs, dict):
            out.warn(f"node {node_id} {ctype}: 'inputs' is not an object: skipped")
            continue
        if ctype in SKIP_TYPES:
            continue
        label = f"{node_id} {ctype}"
        table = _TABLE.get(ctype, {})
        candidates: list[_Candidate] = []
        for name, value in inputs.items():
            if isinstance(value, list) and _is_link(value):
                if table.get(name) is not None:
                    out.warn(f"{label}: '{name}' comes from a link; its value is only known at run time")
                continue
            candidates.append((name, value, table.get(name), False))
        _node_refs(out, label, ctype, _with_rows(ctype, candidates))
    return out.result()


def _is_link(value: Any) -> bool:
    """An API-format input fed by another node: ``["<node id>", <output slot>]``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


# ------------------------------------------------------------------------------ UI


class _Graph:
    """One graph (the root or a subgraph definition) with lazily built link lookups."""

    def __init__(self, data: dict, input_node_id: Any = None):
        self.data = data
        self.input_node_id = input_node_id
        self._origins: dict[Any, Any] | None = None
        self._types: dict[str, tuple[str, dict]] | None = None

    def origin(self, link_id: Any) -> Any:
        """Origin node id of a link, or None if the link is unknown."""
        if self._origins is None:
            self._origins = {}
            links = self.data.get("links")
            for link in links if isinstance(links, list) else ():
                if isinstance(link, list) and len(link) >= 2:
                    self._origins[_key(link[0])] = link[1]
                elif isinstance(link, dict) and "id" in link:
                    self._origins[_key(link["id"])] = link.get("origin_id")
        return self._origins.get(_key(link_id))

    def node(self, node_id: Any) -> tuple[str, dict] | None:
        if self._types is None:
            self._types = {}
            nodes = self.data.get("nodes")
            for n in nodes if isinstance(nodes, list) else ():
                if isinstance(n, dict) and isinstance(n.get("type"), str):
                    self._types[_key(n.get("id"))] = (n["type"], n)
        return self._types.get(_key(node_id))


def _key(value: Any) -> str:
    return str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else repr(value)


@dataclass
class _Instance:
    """What a subgraph instance passes in: link id inside the definition -> subgraph input
    name, and the instance's own stored values by subgraph input name."""

    link_inputs: dict[str, str]
    values: dict[str, Any]


class _UIScanner:
    def __init__(self, wf: dict):
        self.out = _Collector("ui")
        self.defs: dict[str, dict] = {}
        self.reached: set[str] = set()
        self.graphs: dict[str, tuple[_Graph, dict[str, str]]] = {}  # def id -> graph, link id -> input name
        self.visits = 0
        self._collect_defs(wf, 0)

    def _collect_defs(self, graph: dict, depth: int) -> None:
        definitions = graph.get("definitions")
        if definitions is None:
            return
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
        if not isinstance(subgraphs, list):
            self.out.warn("'definitions.subgraphs' is not a list: subgraphs ignored")
            return
        for sg in subgraphs:
            if not isinstance(sg, dict) or not isinstance(sg.get("id"), str):
                self.out.warn("a subgraph definition without a string 'id' was ignored")
                continue
            if sg["id"] in self.defs:
                continue
            self.defs[sg["id"]] = sg
            if depth < MAX_SUBGRAPH_DEPTH:
                self._collect_defs(sg, depth + 1)

    def scan(self, wf: dict) -> ScanResult:
        self._scan_graph(_Graph(wf), prefix="", state="", instance=None, stack=())
        for def_id, sg in self.defs.items():
            if def_id not in self.reached:
                name = sg.get("name")
                label = f"{name!r} ({def_id})" if isinstance(name, str) else def_id
                self.out.warn(f"subgraph definition {label} is not used by any node: not scanned")
        self.out.merge_workflow_models(wf.get("models"))
        return self.out.result()

    # ..................................................................... graph walk

    def _scan_graph(
        self, graph: _Graph, prefix: str, state: str, instance: _Instance | None, stack: tuple[str, ...]
    ) -> None:
        nodes = graph.data.get("nodes")
        if not isinstance(nodes, list):
            self.out.warn(f"{prefix or 'workflow'}: 'nodes' is not a list: skipped")
            return
        for node in nodes:
            self.visits += 1
            if self.visits > MAX_NODE_VISITS:
                if self.visits == MAX_NODE_VISITS + 1:
                    self.out.warn(f"more than {MAX_NODE_VISITS} nodes once subgraphs are expanded: scan stopped early")
                return
            if not isinstance(node, dict):
                self.out.warn(f"{prefix}a node that is not an object was skipped")
                continue
            ntype = node.get("type")
            nid = _key(node.get("id"))
            if not isinstance(ntype, str) or not ntype:
                self.out.warn(f"{prefix}node {nid}: 'type' is not a string: skipped")
                continue
            mode = node.get("mode")
            node_state = state or ("muted" if mode == _MUTED else "bypassed" if mode == _BYPASSED else "")
            if ntype in self.defs:
                self._scan_instance(graph, node, nid, ntype, prefix, node_state, instance, stack)
            elif ntype not in SKIP_TYPES:
                self._scan_node(graph, node, nid, ntype, prefix, node_state, instance)

    def _scan_instance(
        self,
        graph: _Graph,
        node: dict,
        nid: str,
        def_id: str,
        prefix: str,
        state: str,
        outer: _Instance | None,
        stack: tuple[str, ...],
    ) -> None:
        if def_id in stack:
            self.out.warn(f"{prefix}node {nid}: subgraph {def_id} contains itself: not expanded")
            return
        if len(stack) >= MAX_SUBGRAPH_DEPTH:
            self.out.warn(f"{prefix}node {nid}: subgraphs nested too deeply: not expanded")
            return
        self.reached.add(def_id)
        sg = self.defs[def_id]
        if def_id not in self.graphs:
            input_node = sg.get("inputNode")
            input_node_id = input_node.get("id", -10) if isinstance(input_node, dict) else -10
            inner = _Graph(sg, input_node_id)
            self.graphs[def_id] = (inner, self._link_inputs(sg, inner))
        inner, link_inputs = self.graphs[def_id]
        self._scan_graph(
            inner,
            prefix=f"{prefix}subgraph {nid} > ",
            state=state,
            instance=_Instance(link_inputs, self._instance_values(node)),
            stack=stack + (def_id,),
        )

    @staticmethod
    def _link_inputs(sg: dict, inner: _Graph) -> dict[str, str]:
        """Link id inside a definition -> name of the subgraph input it starts from."""
        link_inputs: dict[str, str] = {}
        sg_inputs = sg.get("inputs") if isinstance(sg.get("inputs"), list) else []
        names = [i.get("name") if isinstance(i, dict) else None for i in sg_inputs]
        for inp, name in zip(sg_inputs, names, strict=False):
            if isinstance(name, str) and isinstance(inp.get("linkIds"), list):
                for lid in inp["linkIds"]:
                    link_inputs[_key(lid)] = name
        links = sg.get("links")
        for link in links if isinstance(links, list) else ():
            if isinstance(link, dict) and _key(link.get("origin_id")) == _key(inner.input_node_id):
                slot = link.get("origin_slot")
                if isinstance(slot, int) and 0 <= slot < len(names) and isinstance(names[slot], str):
                    link_inputs.setdefault(_key(link.get("id")), names[slot])
        return link_inputs

    @staticmethod
    def _instance_values(node: dict) -> dict[str, Any]:
        """Values a subgraph instance stores for its promoted widgets, by subgraph input name."""
        values: dict[str, Any] = {}
        wv = node.get("widgets_values")
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        proxy = props.get("proxyWidgets")
        if isinstance(wv, dict):
            values = {k: v for k, v in wv.items() if isinstance(k, str)}
        elif isinstance(wv, list) and wv:
            if isinstance(proxy, list):
                for i, entry in enumerate(proxy):
                    if (
                        isinstance(entry, list)
                        and len(entry) >= 2
                        and _key(entry[0]) == "-1"
                        and isinstance(entry[1], str)
                        and i < len(wv)
                    ):
                        values[entry[1]] = wv[i]
            else:  # older files: one value per widget input of the instance, in order
                inputs = node.get("inputs") if isinstance(node.get("inputs"), list) else []
                widget_names = [
                    i["name"]
                    for i in inputs
                    if isinstance(i, dict) and isinstance(i.get("widget"), dict) and isinstance(i.get("name"), str)
                ]
                positions = _align(widget_names, wv) or {}
                values = {name: wv[i] for name, i in positions.items()}
        return values

    # ........................................................................ one node

    def _scan_node(
        self, graph: _Graph, node: dict, nid: str, ntype: str, prefix: str, state: str, instance: _Instance | None
    ) -> None:
        label = f"{prefix}{nid} {ntype}" + (f" ({state})" if state else "")
        wv = node.get("widgets_values")
        if wv is not None and not isinstance(wv, (list, dict)):
            self.out.warn(f"{label}: 'widgets_values' is {_json_type(wv)}, not a list or object: skipped")
            wv = None
        inputs = node.get("inputs")
        widget_inputs: dict[str, dict] = {}
        widget_order: list[str] = []
        if isinstance(inputs, list):
            for inp in inputs:
                if isinstance(inp, dict) and isinstance(inp.get("widget"), dict):
                    wname = inp["widget"].get("name")
                    if isinstance(wname, str):
                        widget_inputs[wname] = inp
                        widget_order.append(wname)

        candidates: list[_Candidate] = []
        if isinstance(wv, dict):
            table = _TABLE.get(ntype, {})
            candidates = [(k, v, table.get(k), False) for k, v in wv.items() if isinstance(k, str)]
        elif wv:
            if ntype in LOADERS:
                names = [name for name, _ in LOADERS[ntype]]
                folders = [folder for _, folder in LOADERS[ntype]]
            else:
                positions = _align(widget_order, wv) if widget_order else None
                names = [None] * len(wv)
                for name, i in (positions or {}).items():
                    names[i] = name
                folders = []
            candidates = [
                (names[i] if i < len(names) else None, v, folders[i] if i < len(folders) else None, False)
                for i, v in enumerate(wv)
            ]

        resolved: list[_Candidate] = []
        for name, value, folder, off in _with_rows(ntype, candidates):
            if name is not None and name in widget_inputs:
                value = self._linked_value(graph, widget_inputs[name], name, value, folder, instance, label)
                if value is None:
                    continue
            resolved.append((name, value, folder, off))
        self._node_metadata(node, label, _node_refs(self.out, label, ntype, resolved))

    def _linked_value(
        self,
        graph: _Graph,
        inp: dict,
        name: str,
        value: Any,
        folder: str | None,
        instance: _Instance | None,
        label: str,
    ) -> Any:
        """The value of a widget that is also an input: its own, the subgraph instance's, or
        None when a real node supplies it at run time."""
        link = inp.get("link")
        if link is None:
            return value
        if instance is not None:
            sg_input = instance.link_inputs.get(_key(link))
            if sg_input is None and _key(graph.origin(link)) == _key(graph.input_node_id):
                sg_input = name
            if sg_input is not None:
                promoted = instance.values.get(sg_input)
                plain = _unwrap(promoted)
                if isinstance(plain, str) and (_looks_like_file(plain) if folder else _looks_like_model(plain)):
                    return promoted
                return value
        origin = graph.origin(link)
        for _ in range(32):  # follow legacy Reroute nodes back to their source
            if origin is None:
                return value  # dangling link: the widget keeps its value
            found = graph.node(origin)
            if found is None:
                return value
            otype, onode = found
            if otype == "PrimitiveNode":
                return value
            if otype != "Reroute":
                break
            rin = onode.get("inputs")
            first = rin[0] if isinstance(rin, list) and rin and isinstance(rin[0], dict) else {}
            if first.get("link") is None:
                return value
            origin = graph.origin(first["link"])
        if folder is not None or (isinstance(value, str) and _looks_like_model(value)):
            self.out.warn(f"{label}: '{name}' comes from a link; its value is only known at run time")
        return None

    def _node_metadata(self, node: dict, label: str, selected: dict[str, _Key | None]) -> None:
        props = node.get("properties")
        models = props.get("models") if isinstance(props, dict) else None
        if models is None:
            return
        if not isinstance(models, list):
            self.out.warn(f"{label}: 'properties.models' is not a list: ignored")
            return
        for entry in models:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or name not in selected:
                self.out.warn(
                    f"{label}: properties.models entry {_short(name if isinstance(name, str) else entry)}"
                    " is not selected by any widget: ignored"
                )
                continue
            key = selected[name]
            meta = _model_entry(entry)
            if key is None or (not key[0] and not key[2]):
                if meta is None:
                    continue
                folder, mname = meta
                key = self.out.add(mname, folder, label) if key is None else self.out.settle(key, folder, mname)
                selected[name] = key
            elif meta is not None and not key[2] and meta[0] != key[0]:
                self.out.warn(
                    f"{label}: properties.models says {name!r} belongs in {meta[0]!r}, "
                    f"the node loads it from {key[0]!r}"
                )
            self.out.merge_meta(key, entry)


def _align(names: list[str], values: list) -> dict[str, int] | None:
    """Pair widget names with positions in ``values``, skipping the frontend's
    control_after_generate value that follows a seed widget. None if they do not line up."""
    out: dict[str, int] = {}
    i = 0
    for name in names:
        if i >= len(values):
            return None
        out[name] = i
        i += 1
        if (
            "seed" in name.lower()
            and i < len(values)
            and isinstance(values[i], str)
            and values[i] in CONTROL_AFTER_GENERATE_VALUES
        ):
            i += 1
    return out if i == len(values) else None


def _scan_ui(wf: dict) -> ScanResult:
    if not isinstance(wf.get("nodes"), list):
        raise WorkflowError(f"'nodes' must be a list, got {_json_type(wf.get('nodes'))}")
    return _UIScanner(wf).scan(wf)
