"""templates_scan.loaders as data: every entry well-formed, every folder one ComfyUI or a
documented custom-node pack knows, no key written twice.

No database, no I/O beyond reading loaders.py itself (a dict literal silently keeps the last of
two equal keys, so duplicates are found in the source).
"""

import ast
import json
import re
from pathlib import Path

import pytest

from storage import DEFAULT_FOLDER_DIRS
from templates_scan import loaders
from templates_scan.loaders import (
    CUSTOM_FOLDERS,
    DICT_ROW_NODES,
    INPUT_NAME_FOLDERS,
    INPUT_NAME_PATTERNS,
    LOADERS,
    MANAGED_BY_NODE,
    STACKERS,
    SWITCH_OFF_VALUES,
    TYPE_KEYWORD_FOLDERS,
    Stacker,
)

KNOWN_FOLDERS = set(DEFAULT_FOLDER_DIRS) | set(CUSTOM_FOLDERS)
# The frontend's extra widget after a seed: listed only to keep the positions behind it right.
PSEUDO_WIDGETS = {"control_after_generate"}


def all_folders() -> dict[str, str]:
    """folder -> where it is used, over every table that names folders."""
    used: dict[str, str] = {}
    for ntype, rows in LOADERS.items():
        for _, folder in rows:
            if folder is not None:
                used.setdefault(folder, f"LOADERS[{ntype!r}]")
    for name, folder in INPUT_NAME_FOLDERS.items():
        used.setdefault(folder, f"INPUT_NAME_FOLDERS[{name!r}]")
    for pattern, folder in INPUT_NAME_PATTERNS:
        used.setdefault(folder, f"INPUT_NAME_PATTERNS {pattern.pattern}")
    for fragment, folder in TYPE_KEYWORD_FOLDERS:
        used.setdefault(folder, f"TYPE_KEYWORD_FOLDERS {fragment!r}")
    for ntype, stacker in STACKERS.items():
        used.setdefault(stacker.folder, f"STACKERS[{ntype!r}]")
    for ntype, (folder, _, _) in DICT_ROW_NODES.items():
        used.setdefault(folder, f"DICT_ROW_NODES[{ntype!r}]")
    return used


def test_every_folder_is_a_comfyui_folder_or_a_documented_custom_one():
    unknown = {folder: where for folder, where in all_folders().items() if folder not in KNOWN_FOLDERS}
    assert unknown == {}


def test_custom_folders_do_not_shadow_comfyui_folders_and_say_where_they_come_from():
    assert set(CUSTOM_FOLDERS).isdisjoint(DEFAULT_FOLDER_DIRS)
    for folder, origin in CUSTOM_FOLDERS.items():
        assert re.fullmatch(r"[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*", folder), folder
        assert "models/" in origin, f"{folder}: say which directory the pack reads"


def test_every_documented_custom_folder_is_used():
    assert set(CUSTOM_FOLDERS) <= set(all_folders())


@pytest.mark.parametrize("ntype", sorted(LOADERS))
def test_loader_rows_are_named_widgets_with_at_least_one_model_file(ntype):
    rows = LOADERS[ntype]
    assert isinstance(rows, tuple) and rows, ntype
    names = [row[0] for row in rows]
    for row in rows:
        assert isinstance(row, tuple) and len(row) == 2, row
        name, folder = row
        assert isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_+]+", name), name
        assert folder is None or isinstance(folder, str)
    assert len(names) == len(set(names)), f"{ntype}: an input name twice"
    assert any(folder for _, folder in rows), f"{ntype}: no model-file widget"
    # A seed's control_after_generate value directly follows it.
    for i, name in enumerate(names):
        if name in PSEUDO_WIDGETS:
            assert i > 0 and "seed" in names[i - 1], f"{ntype}: {name} not after a seed"


def test_no_table_writes_a_key_twice():
    tree = ast.parse(Path(loaders.__file__).read_text())
    checked = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            duplicates = {k for k in keys if keys.count(k) > 1}
            assert duplicates == set(), f"{ast.unparse(target)}: {duplicates}"
            checked.add(ast.unparse(target))
    assert {"LOADERS", "INPUT_NAME_FOLDERS", "STACKERS", "MANAGED_BY_NODE", "CUSTOM_FOLDERS"} <= checked


def test_a_node_is_either_read_from_the_table_or_managed_by_itself():
    assert set(MANAGED_BY_NODE).isdisjoint(LOADERS)
    assert set(MANAGED_BY_NODE).isdisjoint(DICT_ROW_NODES)
    for ntype, where in MANAGED_BY_NODE.items():
        assert where.strip() and ("custom_nodes/" in where or "models/" in where), ntype


@pytest.mark.parametrize("ntype", sorted(STACKERS))
def test_stacker_rows_are_widgets_of_its_loader_entry(ntype):
    stacker = STACKERS[ntype]
    assert isinstance(stacker, Stacker) and stacker.rows
    assert ntype in LOADERS, "the loader entry gives the widget positions"
    folders = dict(LOADERS[ntype])
    files = [file for file, _ in stacker.rows]
    assert len(files) == len(set(files))
    for file, switch in stacker.rows:
        assert folders.get(file) == stacker.folder, f"{ntype}: {file}"
        if switch is not None:
            assert switch in folders and folders[switch] is None, f"{ntype}: {switch}"
    # Every file widget of the stacker's folder is one of its rows.
    assert {name for name, folder in LOADERS[ntype] if folder == stacker.folder} == set(files)


def test_dict_row_nodes_name_their_keys():
    for ntype, (_, file_key, on_key) in DICT_ROW_NODES.items():
        assert ntype not in LOADERS and ntype not in STACKERS
        assert file_key and on_key and file_key != on_key
    assert "Off" in SWITCH_OFF_VALUES and False in SWITCH_OFF_VALUES and "On" not in SWITCH_OFF_VALUES


@pytest.mark.parametrize("name", sorted(INPUT_NAME_FOLDERS))
def test_api_input_names_are_lower_case(name):
    # folder_from_input lower-cases the input name before looking it up
    assert name == name.lower()


@pytest.mark.parametrize(
    ("ntype", "input_name", "folder"),
    [
        ("Efficient Loader", "ckpt_name", "checkpoints"),
        ("Eff. Loader SDXL", "refiner_ckpt_name", "checkpoints"),
        ("HighRes-Fix Script", "control_net_name", "controlnet"),
        ("SeargeModelSelector", "vae_checkpoint", "vae"),
        ("ttN pipeLoader", "lora3_name", "loras"),
        ("CR Model Merge Stack", "ckpt_name2", "checkpoints"),
        ("ReActorFaceSwap", "face_restore_model", "facerestore_models"),
        ("ReActorFaceSwap", "swap_model", "insightface"),
        ("BrushNetLoader", "brushnet", "inpaint"),
        ("MZ_ChatGLM3Loader", "chatglm3_checkpoint", "LLM"),
        ("FluxTrainModelSelect", "t5", "text_encoders"),
        ("ELLALoader", "name", "ella"),
        ("PulidFluxModelLoader", "pulid_file", "pulid"),
        ("MMDetLoader", "model_name", "mmdets/bbox"),
    ],
)
def test_issue_17_loaders_are_in_the_table(ntype, input_name, folder):
    assert dict(LOADERS[ntype])[input_name] == folder


def test_widget_positions_follow_the_seed_widget():
    # HighRes-Fix Script (efficiency-nodes): ... use_same_seed, seed, <control_after_generate>,
    # hires_steps, denoise, iterations, use_controlnet, control_net_name
    names = [name for name, _ in LOADERS["HighRes-Fix Script"]]
    assert names.index("control_net_name") == 12


CORPUS = Path(__file__).parent / "fixtures" / "custom_nodes"


def test_corpus_lists_every_workflow_once_with_known_folders():
    expected = json.loads((CORPUS / "expected.json").read_text())
    assert set(expected) == {p.name for p in CORPUS.glob("*.json")} - {"expected.json"}
    sources = (CORPUS / "SOURCES.md").read_text()
    for name, refs in expected.items():
        assert f"`{name}`" in sources, f"{name}: origin and licence not recorded"
        keys = [(folder, path) for folder, path, _ in refs]
        assert len(keys) == len(set(keys)), name
        for folder, path, active in refs:
            assert folder is None or folder in KNOWN_FOLDERS, (name, folder)
            assert path and "\\" not in path and isinstance(active, bool), (name, path)
