"""Reading and writing presets.yaml, the upstream catalogue format.

`parse_catalogue` turns the text into a plain, validated dict shaped like the file itself, so
that `dump_catalogue` of it gives the file back (load -> export -> load is lossless). The
format is upstream's (ZeroClue/ComfyUI-Docker config/presets.yaml); our own optional fields
extend it: per file `sha256` (hex) and `size_bytes` (the exact byte count).

Validation is strict and collects every error it finds, each naming the preset and field, so
a curator can fix a file in one pass.
"""

import re
from collections import Counter
from urllib.parse import urlsplit

import yaml

from presets.sizes import MAX_BYTES, parse_size
from storage import MAX_PATH_CHARS, unsafe_path_reason

PRESET_FIELDS = ("name", "category", "type", "description", "download_size", "files", "use_case", "tags")
REQUIRED_PRESET_FIELDS = ("name", "category", "type", "files")
FILE_FIELDS = ("path", "url", "size", "optional", "sha256", "size_bytes")
CATEGORY_FIELDS = ("description", "type")

# The longest text each field may hold, in characters: the database's columns are made to
# these (presets.models), so what loads here always fits there.
MAX_LENGTHS = {
    "name": 200,
    "category": 100,
    "path": MAX_PATH_CHARS,
    "url": 2000,
    "size": 50,
    "download_size": 50,
    "version": 50,
}
PRESET_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
WHITESPACE_RE = re.compile(r"\s")
MAX_ALIASES = 100
MAX_DEPTH = 50
MAX_ERRORS = 50


class CatalogueError(ValueError):
    """A catalogue that must not be loaded; `errors` lists every problem found."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


_resolved_tags = {}
STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe loading (libyaml's parser when present) that is strict and fast.

    It rejects duplicate keys (PyYAML silently keeps the last, which would hide a duplicate
    preset id), counts aliases to bound what nested anchors can make us walk, limits nesting,
    and builds plain dicts, lists and scalars directly from the node graph: several times
    faster than PyYAML's generic constructor on a catalogue of thousands of presets.
    """

    def resolve(self, kind, value, implicit):
        """Memoised: a catalogue repeats the same keys and sizes thousands of times."""
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _resolved_tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_resolved_tags) < 10000:
                _resolved_tags[key] = tag
        return tag

    def construct_document(self, node):
        self._built, self._aliases = {}, 0
        try:
            return self._build(node, 0)
        finally:
            self._built = {}
            self.constructed_objects = {}

    def _build(self, node, depth):
        if depth > MAX_DEPTH:
            raise yaml.constructor.ConstructorError(None, None, f"nested deeper than {MAX_DEPTH}", node.start_mark)
        key = id(node)
        if key in self._built:
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} YAML aliases; refusing to expand", node.start_mark
                )
            return self._built[key]
        if isinstance(node, yaml.ScalarNode):
            value = node.value if node.tag == STR_TAG else self.construct_object(node)
        elif node.tag not in (SEQ_TAG, MAP_TAG):
            raise yaml.constructor.ConstructorError(None, None, f"unsupported YAML tag {node.tag!r}", node.start_mark)
        elif isinstance(node, yaml.SequenceNode):
            value = self._built[key] = []
            value.extend(self._build(item, depth + 1) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            value = self._built[key] = {}
            for key_node, value_node in node.value:
                item_key = self._build(key_node, depth + 1)
                try:
                    duplicate = item_key in value
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key must be a plain value", key_node.start_mark
                    ) from None
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {item_key!r}", key_node.start_mark
                    )
                value[item_key] = self._build(value_node, depth + 1)
        else:  # pragma: no cover - PyYAML has no other node kinds
            raise yaml.constructor.ConstructorError(None, None, "unknown YAML node", node.start_mark)
        self._built[key] = value
        return value


def parse_catalogue(text, model_root=None):
    """Parse and validate presets.yaml text; return the normalised catalogue dict.

    With `model_root`, each file's whole path under it must also fit the file system's limit.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CatalogueError([f"file is not UTF-8 text: {exc}"]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CatalogueError([f"invalid YAML: {exc}"]) from None
    except RecursionError:
        raise CatalogueError(["invalid YAML: nested too deeply"]) from None
    return validate_catalogue(data, model_root)


def validate_catalogue(data, model_root=None):
    errors = _Errors()
    if not isinstance(data, dict):
        raise CatalogueError([f"the file must be a mapping with 'presets', got {_kind(data)}"])
    for key in data:
        if key not in ("metadata", "categories", "presets"):
            errors.add(f"unknown top-level key {key!r}")

    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        errors.add(f"metadata: must be a mapping, got {_kind(metadata)}")
        metadata = {}
    else:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, (str, int, float, bool, type(None))):
                errors.add(f"metadata: {key!r}: must be a plain value, got {_kind(value)}")
            elif key == "version":
                _fits("metadata", "version", str(value), errors)

    categories = _validate_categories(data.get("categories", {}), errors)

    presets = data.get("presets")
    if presets is None:
        errors.add("missing 'presets'")
        presets = {}
    elif not isinstance(presets, dict):
        errors.add(f"presets: must be a mapping of preset id to preset, got {_kind(presets)}")
        presets = {}

    clean_presets = {}
    for preset_id, preset in presets.items():
        where = f"preset {preset_id!r}"
        problem = preset_id_reason(preset_id)
        if problem:
            errors.add(f"{where}: id {problem}")
            continue
        clean = _validate_preset(where, preset, categories, errors, model_root)
        if clean is not None:
            clean_presets[preset_id] = clean

    errors.raise_if_any()
    return {"metadata": metadata, "categories": categories, "presets": clean_presets}


def _validate_categories(categories, errors):
    if not isinstance(categories, dict):
        errors.add(f"categories: must be a mapping, got {_kind(categories)}")
        return {}
    clean = {}
    for name, category in categories.items():
        where = f"category {name!r}"
        if not isinstance(name, str) or not name.strip():
            errors.add(f"{where}: name must be a non-empty string")
            continue
        if not _fits(where, "category", name, errors):
            continue
        if not isinstance(category, dict):
            errors.add(f"{where}: must be a mapping with description and type, got {_kind(category)}")
            continue
        _reject_unknown(where, category, CATEGORY_FIELDS, errors)
        description = _string(where, category, "description", errors, required=False)
        type_ = _string(where, category, "type", errors, required=True)
        if type_ is not None and not TYPE_RE.match(type_):
            errors.add(f"{where}: type: must be a short lowercase word like 'image', got {type_!r}")
        clean[name] = {"description": description or "", "type": type_}
    return clean


def _validate_preset(where, preset, categories, errors, model_root):
    if not isinstance(preset, dict):
        errors.add(f"{where}: must be a mapping, got {_kind(preset)}")
        return None
    _reject_unknown(where, preset, PRESET_FIELDS, errors)
    for field in REQUIRED_PRESET_FIELDS:
        if field not in preset or preset[field] is None:
            errors.add(f"{where}: missing {field}")

    clean = {}
    for field in ("name", "category", "type", "description", "use_case"):
        value = _string(where, preset, field, errors, required=False)
        clean[field] = value or ""
    if "name" in preset and preset["name"] is not None and not clean["name"].strip():
        errors.add(f"{where}: name: must not be empty")
    if clean["category"] and clean["category"] not in categories:
        errors.add(f"{where}: category: {clean['category']!r} is not one of the file's categories")
    if clean["type"] and not TYPE_RE.match(clean["type"]):
        errors.add(f"{where}: type: must be a short lowercase word like 'image', got {clean['type']!r}")

    clean["download_size"] = _size(where, preset, "download_size", errors)

    tags = preset.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() and "," not in t for t in tags):
        errors.add(f"{where}: tags: must be a list of non-empty words or phrases without commas")
        tags = []
    clean["tags"] = tags

    files = preset.get("files")
    clean["files"] = []
    if files is not None:
        if not isinstance(files, list) or not files:
            errors.add(f"{where}: files: must be a non-empty list")
        else:
            for index, file in enumerate(files):
                clean_file = _validate_file(f"{where}: files[{index}]", file, errors, model_root)
                if clean_file is not None:
                    clean["files"].append(clean_file)
            paths = Counter(f["path"] for f in clean["files"])
            for path in sorted(p for p, count in paths.items() if count > 1):
                errors.add(f"{where}: files: path {path!r} is listed twice")
    return clean


def _validate_file(where, file, errors, model_root):
    if not isinstance(file, dict):
        errors.add(f"{where}: must be a mapping with path and url, got {_kind(file)}")
        return None
    _reject_unknown(where, file, FILE_FIELDS, errors)
    clean = {}
    path = _string(where, file, "path", errors, required=True)
    if path is not None:
        problem = unsafe_path_reason(path, model_root)
        if problem:
            errors.add(f"{where}: path: {problem}: {path!r}")
    clean["path"] = path
    url = _string(where, file, "url", errors, required=True)
    if url is not None:
        problem = unsafe_url_reason(url)
        if problem:
            errors.add(f"{where}: url: {problem}: {url!r}")
    clean["url"] = url
    clean["size"] = _size(where, file, "size", errors)

    if "optional" in file:
        if not isinstance(file["optional"], bool):
            errors.add(f"{where}: optional: must be true or false, got {file['optional']!r}")
        elif file["optional"]:
            clean["optional"] = True  # false is what a file without the flag is
    if "sha256" in file:
        sha = file["sha256"]
        if not isinstance(sha, str) or not SHA256_RE.match(sha.lower()):
            errors.add(f"{where}: sha256: must be 64 hexadecimal digits")
        else:
            clean["sha256"] = sha.lower()
    if "size_bytes" in file:
        exact = file["size_bytes"]
        if isinstance(exact, bool) or not isinstance(exact, int) or not 0 < exact <= MAX_BYTES:
            errors.add(f"{where}: size_bytes: must be a whole number of bytes from 1 to {MAX_BYTES}")
        else:
            clean["size_bytes"] = exact
    return clean


def tags_from_text(text):
    """Tags as people type them, "lora, team": the admin's form. A tag never holds a comma."""
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def tags_as_text(tags):
    return ", ".join(tags)


def preset_id_reason(preset_id):
    """Why a preset id is refused, or None: ids appear in URLs, file names and presets.yaml keys."""
    if not isinstance(preset_id, str) or not PRESET_ID_RE.fullmatch(preset_id):
        return "must start with a letter or digit and have only letters, digits, '_', '-' or '.' (at most 100)"
    return None


def unsafe_url_reason(url):
    """Why a URL may not be downloaded, or None when it is an ordinary http(s) URL."""
    if WHITESPACE_RE.search(url):
        return "must not contain whitespace"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    if parts.username or parts.password:
        return "must not carry credentials (configure tokens in the server's settings)"
    return None


def dump_catalogue(catalogue):
    """YAML text of a catalogue dict in upstream's layout and key order."""
    presets = {}
    for preset_id, preset in catalogue["presets"].items():
        entry = {field: preset[field] for field in PRESET_FIELDS if field in preset}
        entry["files"] = [{k: f[k] for k in FILE_FIELDS if f.get(k) is not None} for f in preset["files"]]
        presets[preset_id] = entry
    document = {
        "metadata": catalogue.get("metadata") or {},
        "categories": catalogue["categories"],
        "presets": presets,
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


class _Errors:
    def __init__(self):
        self.items = []

    def add(self, message):
        if len(self.items) < MAX_ERRORS:
            self.items.append(message)
        elif len(self.items) == MAX_ERRORS:
            self.items.append("... more errors not shown")

    def raise_if_any(self):
        if self.items:
            raise CatalogueError(self.items)


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _reject_unknown(where, mapping, allowed, errors):
    for key in mapping:
        if key not in allowed:
            errors.add(f"{where}: unknown field {key!r} (allowed: {', '.join(allowed)})")


def _string(where, mapping, field, errors, required):
    value = mapping.get(field)
    if value is None:
        if required:
            errors.add(f"{where}: missing {field}")
        return None
    if not isinstance(value, str):
        errors.add(f"{where}: {field}: must be a string, got {_kind(value)}")
        return None
    if not _fits(where, field, value, errors):
        return None
    return value


def _fits(where, field, value, errors):
    longest = MAX_LENGTHS.get(field)
    if longest is not None and len(value) > longest:
        errors.add(f"{where}: {field}: is {len(value)} characters long; at most {longest} fit")
        return False
    return True


def _size(where, mapping, field, errors):
    value = mapping.get(field)
    label = f"{where}: {field}"
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(f"{label}: must be a string like '4.8GB', got {_kind(value)}")
        return ""
    if not _fits(where, field, value, errors):
        return ""
    try:
        parse_size(value)
    except ValueError as exc:
        errors.add(f"{label}: {exc}")
        return ""
    return value
