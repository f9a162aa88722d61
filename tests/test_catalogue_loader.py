"""presets.yaml parsing: upstream files load unchanged, hostile files are refused with a named error."""

import textwrap

import pytest
import yaml

from presets.catalogue import CatalogueError, dump_catalogue, parse_catalogue
from presets.sizes import human_size, parse_size
from tests.conftest import UPSTREAM

GOOD_FILE = {"path": "checkpoints/model.safetensors", "url": "https://example.org/model.safetensors", "size": "2GB"}


def preset(**overrides):
    base = {
        "name": "Test preset",
        "category": "Image Generation",
        "type": "image",
        "description": "A preset used by the tests",
        "download_size": "2GB",
        "files": [dict(GOOD_FILE)],
        "use_case": "testing",
        "tags": ["test"],
    }
    base.update(overrides)
    return base


def catalogue_text(presets, categories=None):
    return yaml.safe_dump(
        {
            "metadata": {"version": "1.0.0"},
            "categories": categories or {"Image Generation": {"description": "Images", "type": "image"}},
            "presets": presets,
        }
    )


def test_upstream_catalogue_loads_unchanged():
    catalogue = parse_catalogue((UPSTREAM / "presets.yaml").read_bytes())
    files = [f for p in catalogue["presets"].values() for f in p["files"]]
    assert len(catalogue["presets"]) == 56
    assert len(files) == 183
    # Eight files say "optional: false", which is what a file without the flag is.
    assert not any("optional" in f for f in files)
    assert catalogue["metadata"]["version"] == "1.5.0"
    assert set(catalogue["categories"]) == {"Video Generation", "Image Generation", "Audio Generation"}


def test_older_upstream_catalogue_loads_unchanged():
    catalogue = parse_catalogue((UPSTREAM / "presets-8e4c5f3.yaml").read_bytes())
    assert len(catalogue["presets"]) == 55
    assert sum(len(p["files"]) for p in catalogue["presets"].values()) == 157


def test_upstream_sizes_with_approximations_parse():
    catalogue = parse_catalogue((UPSTREAM / "presets.yaml").read_bytes())
    s2v = catalogue["presets"]["WAN2_2_S2V_14B_FP8_SCALED"]
    assert s2v["download_size"] == "~23GB"
    assert parse_size("~23GB") == 23 * 1024**3
    assert parse_size("15.27GB (15635MB)") == int(15.27 * 1024**3)


@pytest.mark.parametrize("name", ["presets.yaml", "presets-8e4c5f3.yaml"])
def test_load_export_load_is_lossless(name):
    first = parse_catalogue((UPSTREAM / name).read_bytes())
    second = parse_catalogue(dump_catalogue(first))
    assert second == first
    assert list(second["presets"]) == list(first["presets"])


def test_our_extension_fields_load_and_survive_export():
    sha = "ab" * 32
    text = catalogue_text({"X": preset(files=[dict(GOOD_FILE, sha256=sha.upper(), size_bytes=1234, optional=True)])})
    catalogue = parse_catalogue(text)
    file = catalogue["presets"]["X"]["files"][0]
    assert file == dict(GOOD_FILE, sha256=sha, size_bytes=1234, optional=True)
    assert parse_catalogue(dump_catalogue(catalogue)) == catalogue


def test_every_error_is_reported_in_one_pass():
    text = catalogue_text(
        {
            "A": preset(files=[dict(GOOD_FILE, path="/etc/passwd")]),
            "B": preset(files=[dict(GOOD_FILE, url="ftp://x/y")]),
        }
    )
    with pytest.raises(CatalogueError) as error:
        parse_catalogue(text)
    assert len(error.value.errors) == 2
    assert "preset 'A'" in error.value.errors[0] and "path" in error.value.errors[0]
    assert "preset 'B'" in error.value.errors[1] and "url" in error.value.errors[1]


def file_with(**fields):
    return {"X": preset(files=[dict(GOOD_FILE, **fields)])}


def file_without(field):
    entry = dict(GOOD_FILE)
    del entry[field]
    return {"X": preset(files=[entry])}


DUPLICATE_IDS = textwrap.dedent(
    """\
    categories:
      Image Generation: {description: Images, type: image}
    presets:
      SAME:
        {name: One, category: Image Generation, type: image,
         files: [{path: checkpoints/a.safetensors, url: 'https://e.org/a', size: 1GB}]}
      SAME:
        {name: Two, category: Image Generation, type: image,
         files: [{path: checkpoints/b.safetensors, url: 'https://e.org/b', size: 1GB}]}
    """
)

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(15)
)

HOSTILE = {
    "invalid YAML": ("presets: [unclosed", "invalid YAML"),
    "tab indentation": ("presets:\n\tX: 1\n", "invalid YAML"),
    "not a mapping": ("- just\n- a list\n", "must be a mapping"),
    "empty file": ("", "must be a mapping"),
    "presets is a list": ("presets: [a, b]\n", "presets: must be a mapping"),
    "no presets key": ("categories: {}\n", "missing 'presets'"),
    "unknown top-level key": ("presets: {}\nextra: 1\n", "unknown top-level key 'extra'"),
    "duplicate preset ids": (DUPLICATE_IDS, "duplicate key 'SAME'"),
    "id with a slash": (catalogue_text({"../X": preset()}), "id must"),
    "numeric id": (catalogue_text({123: preset()}), "id must"),
    "preset is a string": (catalogue_text({"X": "hello"}), "preset 'X': must be a mapping"),
    "missing name": (
        catalogue_text({"X": {k: v for k, v in preset().items() if k != "name"}}),
        "preset 'X': missing name",
    ),
    "name is a number": (catalogue_text({"X": preset(name=42)}), "preset 'X': name: must be a string"),
    "unknown category": (catalogue_text({"X": preset(category="Nope")}), "preset 'X': category: 'Nope'"),
    "bad type": (catalogue_text({"X": preset(type="Image Stuff")}), "preset 'X': type:"),
    "tags not a list": (catalogue_text({"X": preset(tags="a,b")}), "preset 'X': tags:"),
    "tag with a comma": (
        catalogue_text({"X": preset(tags=["a, b"])}),
        "preset 'X': tags: must be a list of non-empty words",
    ),
    "download_size not a size": (catalogue_text({"X": preset(download_size="huge")}), "preset 'X': download_size:"),
    "files empty": (catalogue_text({"X": preset(files=[])}), "preset 'X': files: must be a non-empty list"),
    "files missing": (catalogue_text({"X": {k: v for k, v in preset().items() if k != "files"}}), "missing files"),
    "file is a string": (
        catalogue_text({"X": preset(files=["checkpoints/a.safetensors"])}),
        "files[0]: must be a mapping",
    ),
    "absolute path": (catalogue_text(file_with(path="/etc/cron.d/evil")), "files[0]: path: must be relative"),
    "dotdot path": (
        catalogue_text(file_with(path="checkpoints/../../etc/passwd")),
        "files[0]: path: must not contain '..'",
    ),
    "dotdot only": (catalogue_text(file_with(path="..")), "path: must not contain '..'"),
    "home path": (catalogue_text(file_with(path="~/.ssh/authorized_keys")), "path: must be relative"),
    "backslash path": (
        catalogue_text(file_with(path="checkpoints\\..\\x.bin")),
        "path: contains a control character, backslash",
    ),
    "NUL in path": (catalogue_text(file_with(path="checkpoints/a\x00.bin")), "path: contains a control character"),
    "hidden file": (catalogue_text(file_with(path="checkpoints/.bashrc")), "path: must not contain hidden"),
    "empty component": (catalogue_text(file_with(path="checkpoints//a.bin")), "path: must not contain empty"),
    "no model folder": (catalogue_text(file_with(path="model.safetensors")), "path: must name a model folder"),
    "part suffix": (catalogue_text(file_with(path="checkpoints/a.safetensors.part")), "name ending in '.part'"),
    "part folder": (catalogue_text(file_with(path="checkpoints/x.part/y.bin")), "name ending in '.part'"),
    "file name over 255 bytes": (
        catalogue_text(file_with(path="checkpoints/" + "é" * 130 + ".safetensors")),
        "has a file name of 272 bytes in UTF-8; at most 250 bytes are allowed",
    ),
    "file name that leaves no room for .part": (
        catalogue_text(file_with(path="checkpoints/" + "a" * 251)),
        "file name of 251 bytes",
    ),
    "folder name over 255 bytes": (
        catalogue_text(file_with(path="checkpoints/" + "ü" * 128 + "/a.bin")),
        "folder name of 256 bytes in UTF-8; the file system allows at most 255 bytes",
    ),
    "id with a newline": (catalogue_text({"X\n": preset()}), "id must"),
    "id with a query": (catalogue_text({"ID?q#h": preset()}), "id must"),
    "size too large for the database": (
        catalogue_text(file_with(size="9999999TB")),
        "files[0]: size: '9999999TB' is too large: at most 8388607TB",
    ),
    "download_size too large": (catalogue_text({"X": preset(download_size="9" * 400 + "GB")}), "download_size:"),
    "name longer than its column": (
        catalogue_text({"X": preset(name="n" * 201)}),
        "preset 'X': name: is 201 characters long; at most 200 fit",
    ),
    "url longer than its column": (
        catalogue_text(file_with(url="https://example.org/" + "u" * 2000)),
        "files[0]: url: is 2020 characters long",
    ),
    "size text longer than its column": (
        catalogue_text(file_with(size="4GB (" + "x" * 60 + ")")),
        "files[0]: size: is 66",
    ),
    "category name longer than its column": (
        catalogue_text({}, categories={"c" * 101: {"type": "image"}}),
        "category: is 101 characters long; at most 100",
    ),
    "version longer than its column": (
        "metadata: {version: '" + "1" * 51 + "'}\npresets: {}\n",
        "metadata: version: is 51 characters long",
    ),
    "size_bytes too large": (
        catalogue_text(file_with(size_bytes=2**63)),
        "size_bytes: must be a whole number of bytes",
    ),
    "path is a list": (catalogue_text(file_with(path=["a", "b"])), "files[0]: path: must be a string"),
    "missing url": (catalogue_text(file_without("url")), "preset 'X': files[0]: missing url"),
    "missing path": (catalogue_text(file_without("path")), "preset 'X': files[0]: missing path"),
    "file url scheme": (catalogue_text(file_with(url="file:///etc/passwd")), "url: must be an http:// or https://"),
    "ftp url": (catalogue_text(file_with(url="ftp://example.org/a")), "url: must be an http:// or https://"),
    "javascript url": (catalogue_text(file_with(url="javascript:alert(1)")), "url: must be an http:// or https://"),
    "url without host": (catalogue_text(file_with(url="https:///nohost")), "url: has no host"),
    "url with credentials": (
        catalogue_text(file_with(url="https://user:pw@example.org/a")),
        "url: must not carry credentials",
    ),
    "url with spaces": (catalogue_text(file_with(url="https://example.org/a b")), "url: must not contain whitespace"),
    "url bad port": (catalogue_text(file_with(url="https://example.org:99999/a")), "url: is not a valid URL"),
    "size not a size": (catalogue_text(file_with(size="big")), "files[0]: size: not a size"),
    "size is a number": (catalogue_text(file_with(size=5)), "files[0]: size: must be a string"),
    "optional not bool": (
        catalogue_text(file_with(optional="yes please")),
        "files[0]: optional: must be true or false",
    ),
    "bad sha256": (catalogue_text(file_with(sha256="abc")), "files[0]: sha256: must be 64 hexadecimal"),
    "negative size_bytes": (
        catalogue_text(file_with(size_bytes=-1)),
        "files[0]: size_bytes: must be a whole number of bytes from 1",
    ),
    "bool size_bytes": (
        catalogue_text(file_with(size_bytes=True)),
        "files[0]: size_bytes: must be a whole number of bytes from 1",
    ),
    "unknown file field": (catalogue_text(file_with(urll="https://e.org")), "files[0]: unknown field 'urll'"),
    "unknown preset field": (catalogue_text({"X": preset(colour="red")}), "preset 'X': unknown field 'colour'"),
    "same path twice": (
        catalogue_text({"X": preset(files=[dict(GOOD_FILE), dict(GOOD_FILE)])}),
        "path 'checkpoints/model.safetensors' is listed twice",
    ),
    "category without type": (
        catalogue_text({"X": preset()}, categories={"Image Generation": {"description": "x"}}),
        "category 'Image Generation': missing type",
    ),
    "alias bomb": (ALIAS_BOMB, "YAML aliases"),
    "deep nesting": ("presets: " + "[" * 200 + "]" * 200, "nested deeper than 50"),
    "very deep nesting": ("presets: " + "[" * 100_000 + "]" * 100_000, "invalid YAML"),
    "python object tag": ("presets: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    "not utf-8": (b"presets: {\xff\xfe}", "not UTF-8"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_catalogue_is_refused_with_a_named_error(case):
    text, expected = HOSTILE[case]
    with pytest.raises(CatalogueError) as error:
        parse_catalogue(text)
    assert any(expected in message for message in error.value.errors), error.value.errors


def test_a_name_just_within_the_byte_limits_loads():
    name = "é" * 119 + ".safetensors"  # 250 bytes: 255 once ".part" is added
    folder = "ü" * 127  # 254 bytes
    catalogue = parse_catalogue(catalogue_text(file_with(path=f"checkpoints/{folder}/{name}")))
    assert catalogue["presets"]["X"]["files"][0]["path"] == f"checkpoints/{folder}/{name}"


def test_the_whole_path_under_the_model_root_must_fit_path_max(tmp_path):
    path = "checkpoints/" + "/".join(["d" * 200] * 2) + "/model.safetensors"  # 433 bytes
    deep_root = tmp_path.joinpath(*["r" * 250] * 15)  # about 3,800 bytes
    assert parse_catalogue(catalogue_text(file_with(path=path)), model_root=tmp_path)
    with pytest.raises(CatalogueError) as error:
        parse_catalogue(catalogue_text(file_with(path=path)), model_root=deep_root)
    assert "bytes under the model root; the file system allows at most 4095" in error.value.errors[0]


def test_human_size_reads_well():
    assert human_size(5153960755) == "4.8 GB"
    assert human_size(512) == "512 B"
    assert human_size(None) == ""
