"""templates_scan.scanner: model references in ComfyUI workflows, and finding them on disk.

No database: these tests only use files under tests/fixtures/workflows and tmp_path.
"""

import copy
import dataclasses
import json
import os
import time
from pathlib import Path

import pytest

from storage import ConfigError, ModelRoots, is_unsafe_path
from templates_scan import scanner
from templates_scan.loaders import LOADERS, folder_from_input, folder_from_type
from templates_scan.scanner import (
    ModelRef,
    ScanResult,
    WorkflowError,
    normalize_model_path,
    scan_file,
    scan_workflow,
)

WORKFLOWS = Path(__file__).parent / "fixtures" / "workflows"


def refs(result: ScanResult) -> dict:
    """(directory, path) -> ModelRef, checking that the key really is unique."""
    out = {(m.directory, m.path): m for m in result.models}
    assert len(out) == len(result.models)
    return out


def summary(result: ScanResult) -> set:
    return {(m.directory, m.path, m.nodes) for m in result.models}


def known(result: ScanResult) -> set:
    """The refs whose folder the workflow says."""
    return {(m.directory, m.path, m.nodes) for m in result.models if m.directory}


def unknown(result: ScanResult) -> set:
    """The refs whose folder the workflow leaves open, with the folder guessed for each."""
    return {(m.guess, m.path, m.nodes) for m in result.models if m.folder_unknown}


def ui(nodes, **extra) -> dict:
    """A minimal UI-format workflow around the given nodes."""
    return {
        "last_node_id": 99,
        "last_link_id": 99,
        "nodes": nodes,
        "links": [],
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
        **extra,
    }


def node(nid, ntype, widgets_values=None, **kw) -> dict:
    n = {
        "id": nid,
        "type": ntype,
        "pos": [0, 0],
        "size": [300, 100],
        "flags": {},
        "order": 0,
        "mode": 0,
        "inputs": [],
        "outputs": [],
        "properties": {"Node name for S&R": ntype},
    }
    if widgets_values is not None:
        n["widgets_values"] = widgets_values
    n.update(kw)
    return n


# ------------------------------------------------------------------------- fixtures


def test_ui_sdxl_basic():
    result = scan_file(WORKFLOWS / "ui_sdxl_basic.json")
    assert result.format == "ui"
    assert summary(result) == {
        ("checkpoints", "SDXL/sd_xl_base_1.0.safetensors", ("4 CheckpointLoaderSimple", "13 CheckpointLoaderSimple")),
        ("loras", "add-detail-xl.safetensors", ("10 LoraLoader",)),
        ("vae", "sdxl_vae.safetensors", ("11 VAELoader",)),
        # only the top-level "models" list names it: no node uses it
        ("upscale_models", "4x-UltraSharp.pth", ()),
    }
    r = refs(result)
    ckpt = r["checkpoints", "SDXL/sd_xl_base_1.0.safetensors"]
    assert ckpt.name == "SDXL\\sd_xl_base_1.0.safetensors"  # as written by the first node using it
    assert ckpt.url == (
        "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors"
    )
    assert ckpt.hash == "sha256:31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"
    assert r["loras", "add-detail-xl.safetensors"].url == "https://civitai.com/api/download/models/135867"
    # url from the top-level models list, matched by directory + file name
    assert (
        r["vae", "sdxl_vae.safetensors"].url
        == "https://huggingface.co/stabilityai/sdxl-vae/resolve/main/sdxl_vae.safetensors"
    )
    assert (
        r["upscale_models", "4x-UltraSharp.pth"].url
        == "https://huggingface.co/Kim2091/UltraSharp/resolve/main/4x-UltraSharp.pth"
    )
    # VAELoader "taesdxl" is a built-in approximation, not a file; a Markdown note is not a loader
    assert not any("taesd" in m.path or "refiner" in m.path for m in result.models)
    assert not any(m.inactive or m.unsafe for m in result.models)


def test_ui_flux_subgraph():
    result = scan_file(WORKFLOWS / "ui_flux_subgraph.json")
    assert result.format == "ui"
    assert summary(result) == {
        # the instance's promoted widget value wins over the inner node's stale one
        ("diffusion_models", "flux1-dev-fp8.safetensors", ("subgraph 20 > 31 UNETLoader",)),
        ("text_encoders", "clip_l.safetensors", ("subgraph 20 > 32 DualCLIPLoader",)),
        ("text_encoders", "t5xxl_fp8_e4m3fn.safetensors", ("subgraph 20 > 32 DualCLIPLoader",)),
        ("vae", "ae.safetensors", ("subgraph 20 > 33 VAELoader",)),
        ("upscale_models", "4x-UltraSharp.pth", ("subgraph 20 > subgraph 40 > 41 UpscaleModelLoader",)),
        ("loras", "flux_realism_lora.safetensors", ("21 LoraLoaderModelOnly (muted)",)),
    }
    r = refs(result)
    assert (
        r["diffusion_models", "flux1-dev-fp8.safetensors"].url
        == "https://huggingface.co/Comfy-Org/flux1-dev/resolve/main/flux1-dev-fp8.safetensors"
    )
    # metadata directory "clip" is the legacy name of text_encoders
    assert (
        r["text_encoders", "clip_l.safetensors"].url
        == "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors"
    )
    assert r["vae", "ae.safetensors"].url.endswith("/vae/ae.safetensors")
    assert r["upscale_models", "4x-UltraSharp.pth"].url is None
    # muted node: still reported, flagged
    lora = r["loras", "flux_realism_lora.safetensors"]
    assert lora.inactive and lora.url.startswith("https://huggingface.co/XLabs-AI/")
    assert not r["vae", "ae.safetensors"].inactive
    # neither the stale inner value nor the never-instantiated definition is reported
    paths = {m.path for m in result.models}
    assert "flux1-dev.safetensors" not in paths
    assert "old_unused_checkpoint.safetensors" not in paths
    assert any("Old checkpoint helper" in w and "not used" in w for w in result.warnings)


def test_api_wan_video():
    result = scan_file(WORKFLOWS / "api_wan_video.json")
    assert result.format == "api"
    assert summary(result) == {
        ("diffusion_models", "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors", ("37 UNETLoader",)),
        ("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", ("38 CLIPLoader",)),
        ("vae", "wan_2.1_vae.safetensors", ("39 VAELoader",)),
        ("clip_vision", "clip_vision_h.safetensors", ("49 CLIPVisionLoader",)),
        ("loras", "wan/Wan21_CausVid_14B_T2V_lora_rank32.safetensors", ("54 LoraLoaderModelOnly",)),
    }
    lora = refs(result)["loras", "wan/Wan21_CausVid_14B_T2V_lora_rank32.safetensors"]
    assert lora.name == "wan\\Wan21_CausVid_14B_T2V_lora_rank32.safetensors"
    assert all(m.url is None and m.hash is None for m in result.models)
    # node 55's lora_name is a link ["60", 0]: skipped, and said so
    assert not any("55" in n for m in result.models for n in m.nodes)
    assert any(w.startswith("55 LoraLoaderModelOnly") and "link" in w for w in result.warnings)
    # the concatenated pieces of node 60 are not mistaken for model files
    assert not any("lightx2v" in m.path for m in result.models)


def test_api_misc_loaders():
    result = scan_file(WORKFLOWS / "api_misc_loaders.json")
    assert result.format == "api"
    assert known(result) == {
        ("controlnet", "SDXL/controlnet-canny-sdxl-1.0.safetensors", ("1 ControlNetLoader",)),
        ("controlnet", "diff_control_sd15_depth_fp16.safetensors", ("8 DiffControlNetLoader",)),
        ("upscale_models", "RealESRGAN_x4plus.pth", ("2 UpscaleModelLoader",)),
        ("checkpoints", "sd21-unclip-h.ckpt", ("3 unCLIPCheckpointLoader",)),
        ("checkpoints", "v1-5-pruned-emaonly.safetensors", ("9 CheckpointLoaderSimple",)),
        ("style_models", "flux1-redux-dev.safetensors", ("4 StyleModelLoader",)),
        ("gligen", "gligen_sd14_textbox_pruned.safetensors", ("10 GLIGENLoader",)),
        ("hypernetworks", "mjv4_hypernetwork.pt", ("11 HypernetworkLoader",)),
        ("clip_vision", "sigclip_vision_patch14_384.safetensors", ("14 CLIPVisionLoader",)),
        # heuristics: unknown node, input named ckpt_name
        ("checkpoints", "custom/dreamshaper_8.safetensors", ("5 MyCustomCheckpointPicker",)),
        # dedup across nodes, one writing a backslash, the other a slash
        ("loras", "SDXL/detail_tweaker.safetensors", ("15 LoraLoader", "16 LoraLoaderModelOnly")),
    }
    assert unknown(result) == {
        # a generic "model_name": the node type's "upscale" is only a guess
        ("upscale_models", "4x_NMKD-Siax_200k.pth", ("12 FancyUpscaleModelLoader",)),
        # "model_name" of a type that suggests no folder: reported all the same
        (None, "mystery_weights.safetensors", ("13 SomethingLoader",)),
    }
    # MyPromptStyler's strings are not model files
    assert not any("portrait" in m.path or "cinematic" in m.path for m in result.models)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken_truncated.json", "invalid JSON"),
        ("not_a_workflow.json", "got a list"),
        ("wrong_types.json", "'nodes' must be a list"),
    ],
)
def test_malformed_files_raise_workflow_error_naming_the_file(name, message):
    with pytest.raises(WorkflowError) as exc:
        scan_file(WORKFLOWS / name)
    assert name in str(exc.value)
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_unreadable_file(tmp_path):
    with pytest.raises(WorkflowError, match="missing.json: cannot read"):
        scan_file(tmp_path / "missing.json")
    (tmp_path / "a_dir").mkdir()
    with pytest.raises(WorkflowError, match="a_dir: cannot read"):
        scan_file(tmp_path / "a_dir")


# ------------------------------------------------------------------ input handling


def test_accepts_bytes_str_and_dict():
    raw = (WORKFLOWS / "api_wan_video.json").read_bytes()
    expected = summary(scan_workflow(raw))
    assert summary(scan_workflow(raw.decode())) == expected
    assert summary(scan_workflow("\ufeff" + raw.decode())) == expected  # BOM from Windows editors
    assert summary(scan_workflow(b"\xef\xbb\xbf" + raw)) == expected
    assert summary(scan_workflow(json.loads(raw))) == expected
    # the /prompt request body wraps the API graph
    assert summary(scan_workflow({"prompt": json.loads(raw), "client_id": "x"})) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe\x00garbage",
        "",
        "null",
        "42",
        '"a string"',
        "[]",
        "{}",
        '{"foo": {"bar": 1}}',
        '{"1": {"inputs": {}}}',
        b"{" + b'"a":' * 10 + b"1",
    ],
)
def test_not_workflows(data):
    with pytest.raises(WorkflowError):
        scan_workflow(data)


def test_deeply_nested_json_is_a_workflow_error_not_a_crash():
    with pytest.raises(WorkflowError, match="nested too deeply"):
        scan_workflow("[" * 100_000 + "]" * 100_000)
    with pytest.raises(WorkflowError, match="nested too deeply"):
        scan_workflow(b'{"nodes": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001)


def test_huge_integer_literal_is_a_workflow_error():
    with pytest.raises(WorkflowError):
        scan_workflow('{"nodes": [], "last_node_id": ' + "9" * 10_000 + "}")


def test_wrong_types_inside_nodes_are_skipped_gracefully():
    wf = ui(
        [
            "not a node",
            None,
            node(1, "CheckpointLoaderSimple", "v1-5-pruned-emaonly.safetensors"),  # widgets_values a string
            node(2, "LoraLoader", ["ok_lora.safetensors", 1, 1], inputs="nope", properties="nope"),
            node(3, None, ["x.safetensors"]),
            node(4, "VAELoader", [None]),
            node(5, "VAELoader", [{"weird": 1}]),
            node(6, "UNETLoader", [12345, "default"]),
            node(7, "CheckpointLoaderSimple", ["a.safetensors"], properties={"models": "nope"}),
            node(8, "CheckpointLoaderSimple", ["b.safetensors"], properties={"models": [None, 3, {"name": 5}]}),
            node([1, 2], "CheckpointLoaderSimple", ["c.safetensors"]),
            {"id": 9, "type": "LoraLoader", "widgets_values": ["z" * 10_000 + ".safetensors"]},
        ],
        links="garbage",
        definitions={"subgraphs": {"not": "a list"}},
        models="nope",
    )
    result = scan_workflow(wf)
    assert {(m.directory, m.path) for m in result.models} == {
        ("loras", "ok_lora.safetensors"),
        ("checkpoints", "a.safetensors"),
        ("checkpoints", "b.safetensors"),
        ("checkpoints", "c.safetensors"),
    }
    assert any("'widgets_values' is a string" in w for w in result.warnings)
    assert any("'type' is not a string" in w for w in result.warnings)


def test_wrong_types_in_api_format():
    result = scan_workflow(
        {
            "1": {"class_type": 5, "inputs": {"ckpt_name": "a.safetensors"}},
            "2": {"class_type": "CheckpointLoaderSimple", "inputs": ["a.safetensors"]},
            "3": {"class_type": "CheckpointLoaderSimple"},
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ok.safetensors"}},
            "5": {"class_type": "VAELoader", "inputs": {"vae_name": None}},
            "extra_pnginfo": "ignored",
        }
    )
    assert summary(result) == {("checkpoints", "ok.safetensors", ("4 CheckpointLoaderSimple",))}


def test_empty_ui_workflow():
    result = scan_workflow(ui([]))
    assert result == ScanResult("ui", [], [])


# ----------------------------------------------------------------- paths and aliases


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("SDXL\\sd_xl_base_1.0.safetensors", "SDXL/sd_xl_base_1.0.safetensors"),
        ("a//b/./c.safetensors", "a/b/c.safetensors"),
        (".\\a.ckpt", "a.ckpt"),
        ("  spaced.safetensors ", "spaced.safetensors"),
        ("../escape.safetensors", "../escape.safetensors"),
        ("/etc/passwd.pt", "/etc/passwd.pt"),
        ("C:\\models\\x.safetensors", "C:/models/x.safetensors"),
    ],
)
def test_normalize_model_path(name, path):
    assert normalize_model_path(name) == path


@pytest.mark.parametrize(
    ("path", "unsafe"),
    [
        ("a.safetensors", False),
        ("SDXL/a.safetensors", False),
        ("a..b.safetensors", False),
        ("../a.safetensors", True),
        ("x/../../a.safetensors", True),
        ("/abs.safetensors", True),
        ("C:/x.safetensors", True),
        ("", True),
        ("a\x00.safetensors", True),
    ],
)
def test_unsafe_paths(path, unsafe):
    assert is_unsafe_path(path) is unsafe


def test_unsafe_refs_are_reported_and_flagged():
    result = scan_workflow(
        {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "..\\..\\secrets.safetensors"}},
            "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "/etc/shadow.pt"}},
            "3": {"class_type": "VAELoader", "inputs": {"vae_name": "D:\\vae\\x.safetensors"}},
        }
    )
    assert {(m.path, m.unsafe) for m in result.models} == {
        ("../../secrets.safetensors", True),
        ("/etc/shadow.pt", True),
        ("D:/vae/x.safetensors", True),
    }


def test_only_urls_the_catalogue_would_accept_are_kept():
    def entry(name, url):
        return {"name": name, "directory": "checkpoints", "url": url}

    wf = ui(
        [],
        models=[
            entry("spaced.safetensors", " HTTPS://example.com/spaced.safetensors\n"),
            entry("credentials.safetensors", "https://user:secret@example.com/credentials.safetensors"),
            entry("inner-space.safetensors", "https://example.com/inner space.safetensors"),
            entry("bad-port.safetensors", "https://example.com:port/bad-port.safetensors"),
            entry("no-host.safetensors", "https:///no-host.safetensors"),
        ],
    )
    urls = {m.path: m.url for m in scan_workflow(wf).models}
    assert urls == {
        "spaced.safetensors": "HTTPS://example.com/spaced.safetensors",
        "credentials.safetensors": None,
        "inner-space.safetensors": None,
        "bad-port.safetensors": None,
        "no-host.safetensors": None,
    }


def test_legacy_directory_names_in_metadata():
    wf = ui(
        [
            node(
                1,
                "UNETLoader",
                ["flux1-schnell.safetensors", "default"],
                properties={
                    "models": [
                        {
                            "name": "flux1-schnell.safetensors",
                            "directory": "unet",
                            "url": "https://example.com/flux1-schnell.safetensors",
                        }
                    ]
                },
            ),
        ],
        models=[
            {"name": "t5xxl_fp16.safetensors", "directory": "clip", "url": "https://example.com/t5.safetensors"},
            {
                "name": "flux1-schnell.safetensors",
                "directory": "unet",
                "url": "https://example.com/other",
                "hash": "ab" * 32,
            },
        ],
    )
    result = scan_workflow(wf)
    r = refs(result)
    assert set(r) == {("diffusion_models", "flux1-schnell.safetensors"), ("text_encoders", "t5xxl_fp16.safetensors")}
    unet = r["diffusion_models", "flux1-schnell.safetensors"]
    assert unet.nodes == ("1 UNETLoader",)
    assert unet.url == "https://example.com/flux1-schnell.safetensors"  # the node's own metadata first
    assert unet.hash == "sha256:" + "ab" * 32  # a bare 64-hex hash is a sha256
    assert not any("belongs in" in w for w in result.warnings)  # "unet" is diffusion_models


def test_metadata_rules():
    wf = ui(
        [
            # stale entry: the node no longer selects it -> ignored (the frontend's rule)
            node(
                1,
                "CheckpointLoaderSimple",
                ["new.safetensors"],
                properties={
                    "models": [
                        {
                            "name": "old.safetensors",
                            "directory": "checkpoints",
                            "url": "https://example.com/old.safetensors",
                        }
                    ]
                },
            ),
            # an unknown node whose only clue is its metadata
            node(
                2,
                "MysteryNode",
                ["weights_v2.safetensors", 7],
                properties={
                    "models": [
                        {
                            "name": "weights_v2.safetensors",
                            "directory": "checkpoints/mystery",
                            "url": "javascript:alert(1)",
                            "hash": "deadbeef",
                            "hash_type": "blake3",
                        }
                    ]
                },
            ),
        ],
        models=[{"name": "solo.gguf", "directory": "diffusion_models"}, {"name": "../x.pt", "directory": ".."}],
    )
    result = scan_workflow(wf)
    r = refs(result)
    assert set(r) == {
        ("checkpoints", "new.safetensors"),
        ("checkpoints", "mystery/weights_v2.safetensors"),
        ("diffusion_models", "solo.gguf"),
    }
    mystery = r["checkpoints", "mystery/weights_v2.safetensors"]
    assert mystery.nodes == ("2 MysteryNode",)
    assert mystery.url is None  # only http(s) URLs are kept
    assert mystery.hash == "blake3:deadbeef"
    assert r["checkpoints", "new.safetensors"].url is None
    assert r["diffusion_models", "solo.gguf"].nodes == ()
    assert any("old.safetensors" in w and "not selected" in w for w in result.warnings)


# ------------------------------------------------------------------------ heuristics


@pytest.mark.parametrize(
    ("ntype", "name", "folder"),
    [
        ("Whatever", "ckpt_name", "checkpoints"),
        ("Whatever", "lora_name", "loras"),
        ("Whatever", "lora_2", "loras"),
        ("Whatever", "vae_name", "vae"),
        ("Whatever", "clip_name", "text_encoders"),
        ("Whatever", "clip_name3", "text_encoders"),
        ("Whatever", "unet_name", "diffusion_models"),
        ("Whatever", "gemma_path", "text_encoders"),
        ("Whatever", "control_net_name", "controlnet"),
        ("MyCLIPVisionLoader", "clip_name", "clip_vision"),
        ("SuperUpscaleLoader", "model_name", "upscale_models"),
        ("LatentUpscaleModelLoaderX", "model_name", "latent_upscale_models"),
        ("Whatever", "model_name", None),
        ("SAMLoaderPlus", "model_name", None),
        ("CheckpointVAELoader", "model_name", None),  # two folders suggested: no guess
        ("UpscaleLoader", "some_other_input", None),
        ("LoraStackLoader", None, "loras"),
    ],
)
def test_folder_from_input(ntype, name, folder):
    assert folder_from_input(ntype, name) == folder


def test_folder_from_type():
    assert folder_from_type("CLIPVisionLoader") == "clip_vision"
    assert folder_from_type("Load Diffusion Model (custom)") == "diffusion_models"
    assert folder_from_type("KSampler") is None


def test_ui_heuristics_for_unknown_nodes():
    wf = ui(
        [
            # dict widgets_values (some custom nodes): names are known
            node(1, "FancyLoader", {"ckpt_name": "dict_ckpt.safetensors", "label": "hello.safetensors.txt"}),
            # widget inputs give names to positional values (seed + control_after_generate skipped)
            node(
                2,
                "SamplerWithLora",
                [42, "randomize", "aligned_lora.safetensors", 0.7],
                inputs=[
                    {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": None},
                    {"name": "lora_name", "type": "COMBO", "widget": {"name": "lora_name"}, "link": None},
                    {"name": "strength", "type": "FLOAT", "widget": {"name": "strength"}, "link": None},
                ],
            ),
            # no names at all: the type guesses
            node(3, "LoraStacker", ["stack_a.safetensors", 1.0, "stack_b.safetensors", 0.5, "None"]),
            node(4, "ImageMagic", ["what_is_this.safetensors"]),
            node(5, "Note", ["readme mentions model.safetensors"]),
            node(6, "PrimitiveNode", ["primitive_value.safetensors", "fixed"]),
        ]
    )
    result = scan_workflow(wf)
    assert summary(result) == {
        ("checkpoints", "dict_ckpt.safetensors", ("1 FancyLoader",)),
        ("loras", "aligned_lora.safetensors", ("2 SamplerWithLora",)),
        ("", "stack_a.safetensors", ("3 LoraStacker",)),
        ("", "stack_b.safetensors", ("3 LoraStacker",)),
        ("", "what_is_this.safetensors", ("4 ImageMagic",)),
    }
    assert unknown(result) == {
        ("loras", "stack_a.safetensors", ("3 LoraStacker",)),
        ("loras", "stack_b.safetensors", ("3 LoraStacker",)),
        (None, "what_is_this.safetensors", ("4 ImageMagic",)),
    }


def test_ltx2_gemma_loader_puts_each_of_its_files_in_its_own_folder():
    """A custom node of Comfy-Org's LTX-2 template: one text encoder and one checkpoint."""
    gemma = "gemma-3-12b-it-qat-q4_0-unquantized_readout_proj/model/model.safetensors"
    checkpoint = "ltx-av-step-1751000_vocoder_24K.safetensors"
    expected = {("text_encoders", gemma), ("checkpoints", checkpoint)}
    in_ui = scan_workflow(ui([node(2, "LTXVGemmaCLIPModelLoader", [gemma, checkpoint, 1024])]))
    in_api = scan_workflow(
        {
            "2": {
                "class_type": "LTXVGemmaCLIPModelLoader",
                "inputs": {"gemma_path": gemma, "ltxv_path": checkpoint, "max_length": 1024},
            }
        }
    )
    for result in (in_ui, in_api):
        assert set(refs(result)) == expected and result.warnings == []


def test_power_lora_loader_style_values():
    wf = ui(
        [
            node(
                7,
                "Power Lora Loader (rgthree)",
                [
                    {},
                    {"type": "PowerLoraLoaderHeaderWidget"},
                    {"on": True, "lora": "style\\on.safetensors", "strength": 1, "strengthTwo": None},
                    {"on": False, "lora": "off.safetensors", "strength": 1, "strengthTwo": None},
                    {},
                    "",
                ],
            )
        ]
    )
    result = scan_workflow(wf)
    assert summary(result) == {
        ("loras", "style/on.safetensors", ("7 Power Lora Loader (rgthree)",)),
        ("loras", "off.safetensors", ("7 Power Lora Loader (rgthree) (off)",)),
    }
    assert refs(result)["loras", "off.safetensors"].inactive


def test_power_lora_loader_rows_in_api_format():
    result = scan_workflow(
        {
            "7": {
                "class_type": "Power Lora Loader (rgthree)",
                "inputs": {
                    "PowerLoraLoaderHeaderWidget": {"type": "PowerLoraLoaderHeaderWidget"},
                    "lora_1": {"on": True, "lora": "on.safetensors", "strength": 1},
                    "lora_2": {"on": False, "lora": "off.safetensors", "strength": 1},
                    "➕ Add Lora": "",
                    "model": ["4", 0],
                },
            }
        }
    )
    assert summary(result) == {
        ("loras", "on.safetensors", ("7 Power Lora Loader (rgthree)",)),
        ("loras", "off.safetensors", ("7 Power Lora Loader (rgthree) (off)",)),
    }


def test_stacker_rows_are_all_reported_and_switched_off_rows_inactive():
    """Comfyroll's CR LoRA Stack: switch, file, model weight, clip weight, three times."""
    values = ["On", "a.safetensors", 1, 1, "Off", "b.safetensors", 1, 1, "Off", "None", 1, 1]
    in_ui = scan_workflow(ui([node(3, "CR LoRA Stack", values)]))
    names = [f"{w}_{i}" for i in (1, 2, 3) for w in ("switch", "lora_name", "model_weight", "clip_weight")]
    in_api = scan_workflow({"3": {"class_type": "CR LoRA Stack", "inputs": dict(zip(names, values, strict=True))}})
    for result in (in_ui, in_api):
        assert summary(result) == {
            ("loras", "a.safetensors", ("3 CR LoRA Stack",)),
            ("loras", "b.safetensors", ("3 CR LoRA Stack (off)",)),
        }


def test_files_a_node_downloads_itself_are_reported_as_managed_by_it():
    detector, pose = "yolox_l.onnx", "dw-ll_ucoco_384_bs5.torchscript.pt"
    in_ui = scan_workflow(ui([node(5, "DWPreprocessor", ["enable", "enable", "enable", 512, detector, pose])]))
    in_api = scan_workflow(
        {
            "5": {
                "class_type": "DWPreprocessor",
                "inputs": {"bbox_detector": detector, "pose_estimator": pose, "image": ["1", 0]},
            }
        }
    )
    for result in (in_ui, in_api):
        assert {(m.path, m.directory, m.folder_unknown) for m in result.models} == {
            (detector, "", False),
            (pose, "", False),
        }
        assert all(m.managed.startswith("custom_nodes/comfyui_controlnet_aux") for m in result.models)


def test_no_model_file_is_dropped_whatever_node_holds_it():
    """Unknown nodes, nested custom widget values, a known loader's extra widgets: every string
    with a model-file extension is a ref; the folder the workflow does not say is left open,
    with a guess from the node type, else the file name."""
    wf = ui(
        [
            node(1, "MysteryNode", [["nested/in_a_list.safetensors", 2], {"weights": "in_an_object.gguf"}]),
            node(2, "MysteryNode", ["my_model_vae.safetensors", "not a file", 3]),
            node(3, "CheckpointLoaderSimple", ["base.safetensors", "left_over.bin"]),
            node(4, "SomeUpscaleThing", ["4x-UltraSharp.pth"]),
        ]
    )
    result = scan_workflow(wf)
    assert known(result) == {("checkpoints", "base.safetensors", ("3 CheckpointLoaderSimple",))}
    assert unknown(result) == {
        (None, "nested/in_a_list.safetensors", ("1 MysteryNode",)),
        (None, "in_an_object.gguf", ("1 MysteryNode",)),
        ("vae", "my_model_vae.safetensors", ("2 MysteryNode",)),
        ("checkpoints", "left_over.bin", ("3 CheckpointLoaderSimple",)),
        ("upscale_models", "4x-UltraSharp.pth", ("4 SomeUpscaleThing",)),
    }
    api = scan_workflow({"9": {"class_type": "FaceThing", "inputs": {"weights": "face.onnx", "image": ["1", 0]}}})
    assert unknown(api) == {(None, "face.onnx", ("9 FaceThing",))}


def test_a_file_of_unknown_folder_takes_the_folder_another_node_loads_it_from():
    wf = ui([node(1, "MysteryNode", ["shared.safetensors"]), node(2, "LoraLoader", ["shared.safetensors", 1, 1])])
    assert summary(scan_workflow(wf)) == {("loras", "shared.safetensors", ("2 LoraLoader", "1 MysteryNode"))}


def test_a_file_of_unknown_folder_takes_the_folder_the_workflow_metadata_gives():
    url = "https://huggingface.co/org/repo/resolve/main/"
    wf = ui(
        [
            node(
                1,
                "MysteryNode",
                ["node_meta.safetensors"],
                properties={"models": [{"name": "node_meta.safetensors", "directory": "loras", "url": url + "a"}]},
            ),
            node(2, "MysteryNode", ["top_meta.safetensors"]),
        ],
        models=[{"name": "top_meta.safetensors", "directory": "checkpoints/SDXL", "url": url + "b"}],
    )
    result = scan_workflow(wf)
    assert summary(result) == {
        ("loras", "node_meta.safetensors", ("1 MysteryNode",)),
        # the node's own name is what ComfyUI loads, as for a ref of known folder
        ("checkpoints", "top_meta.safetensors", ("2 MysteryNode",)),
    }
    assert {m.url for m in result.models} == {url + "a", url + "b"}


def test_every_loader_entry_is_well_formed():
    for ctype, spec in LOADERS.items():
        assert spec and any(folder for _, folder in spec), ctype
        for name, folder in spec:
            assert isinstance(name, str) and (folder is None or isinstance(folder, str)), ctype


# --------------------------------------------------------------------- links, modes


def test_widget_fed_by_links():
    wf = ui(
        [
            node(
                10,
                "PrimitiveNode",
                ["prim.safetensors", "fixed"],
                outputs=[{"name": "COMBO", "type": "COMBO", "widget": {"name": "ckpt_name"}, "links": [1]}],
            ),
            node(
                11,
                "CheckpointLoaderSimple",
                ["prim.safetensors"],
                inputs=[{"name": "ckpt_name", "type": "COMBO", "widget": {"name": "ckpt_name"}, "link": 1}],
            ),
            node(
                12,
                "Reroute",
                None,
                inputs=[{"name": "", "type": "*", "link": 2}],
                outputs=[{"name": "", "type": "COMBO", "links": [3]}],
            ),
            node(
                13,
                "PrimitiveNode",
                ["via_reroute.safetensors"],
                outputs=[{"name": "COMBO", "type": "COMBO", "widget": {"name": "lora_name"}, "links": [2]}],
            ),
            node(
                14,
                "LoraLoader",
                ["via_reroute.safetensors", 1, 1],
                inputs=[{"name": "lora_name", "type": "COMBO", "widget": {"name": "lora_name"}, "link": 3}],
            ),
            node(15, "ModelListSwitch", ["computed.safetensors"]),
            node(
                16,
                "VAELoader",
                ["stale_value.safetensors"],
                inputs=[{"name": "vae_name", "type": "COMBO", "widget": {"name": "vae_name"}, "link": 4}],
            ),
            node(
                17,
                "VAELoader",
                ["dangling.safetensors"],
                inputs=[{"name": "vae_name", "type": "COMBO", "widget": {"name": "vae_name"}, "link": 999}],
            ),
        ],
        links=[
            [1, 10, 0, 11, 0, "COMBO"],
            [2, 13, 0, 12, 0, "*"],
            [3, 12, 0, 14, 0, "COMBO"],
            [4, 15, 0, 16, 0, "COMBO"],
        ],
    )
    result = scan_workflow(wf)
    assert summary(result) == {
        ("checkpoints", "prim.safetensors", ("11 CheckpointLoaderSimple",)),
        ("loras", "via_reroute.safetensors", ("14 LoraLoader",)),
        ("vae", "dangling.safetensors", ("17 VAELoader",)),
        # the switch's own value, whatever it passes on at run time
        ("", "computed.safetensors", ("15 ModelListSwitch",)),
    }
    assert any(w.startswith("16 VAELoader") and "link" in w for w in result.warnings)


def test_muted_and_bypassed_nodes_are_reported_and_flagged():
    wf = ui(
        [
            node(1, "CheckpointLoaderSimple", ["shared.safetensors"]),
            node(2, "CheckpointLoaderSimple", ["shared.safetensors"], mode=4),
            node(3, "LoraLoader", ["muted.safetensors", 1, 1], mode=2),
            node(4, "LoraLoader", ["bypassed.safetensors", 1, 1], mode=4),
        ]
    )
    r = refs(scan_workflow(wf))
    assert r["checkpoints", "shared.safetensors"].nodes == (
        "1 CheckpointLoaderSimple",
        "2 CheckpointLoaderSimple (bypassed)",
    )
    assert not r["checkpoints", "shared.safetensors"].inactive  # one active user is enough
    assert r["loras", "muted.safetensors"].nodes == ("3 LoraLoader (muted)",)
    assert r["loras", "bypassed.safetensors"].nodes == ("4 LoraLoader (bypassed)",)
    assert r["loras", "muted.safetensors"].inactive and r["loras", "bypassed.safetensors"].inactive


# -------------------------------------------------------------------------- subgraphs


def _subgraph(sid, nodes, inputs=(), links=(), definitions=None):
    sg = {
        "id": sid,
        "version": 1,
        "state": {"lastGroupId": 0, "lastNodeId": 9, "lastLinkId": 9, "lastRerouteId": 0},
        "revision": 0,
        "config": {},
        "name": f"sg {sid[:4]}",
        "inputNode": {"id": -10, "bounding": [0, 0, 120, 60]},
        "outputNode": {"id": -20, "bounding": [0, 0, 120, 60]},
        "inputs": list(inputs),
        "outputs": [],
        "widgets": [],
        "nodes": nodes,
        "groups": [],
        "links": list(links),
        "extra": {},
    }
    if definitions:
        sg["definitions"] = definitions
    return sg


SG_A = "11111111-1111-4111-8111-111111111111"
SG_B = "22222222-2222-4222-8222-222222222222"


def test_subgraph_newest_format_uses_inner_values():
    """frontend >= 1.3x: proxyWidgets point at inner node ids; the instance stores no values."""
    inner = node(
        5,
        "UNETLoader",
        ["inner_value.safetensors", "default"],
        inputs=[{"name": "unet_name", "type": "COMBO", "widget": {"name": "unet_name"}, "link": 50}],
    )
    sg = _subgraph(
        SG_A,
        [inner],
        inputs=[{"id": "x", "name": "unet_name", "type": "COMBO", "linkIds": [50]}],
        links=[{"id": 50, "origin_id": -10, "origin_slot": 0, "target_id": 5, "target_slot": 0, "type": "COMBO"}],
    )
    instance = node(
        30,
        SG_A,
        [],
        properties={"proxyWidgets": [["5", "unet_name"]]},
        inputs=[{"name": "unet_name", "type": "COMBO", "widget": {"name": "unet_name"}, "link": None}],
    )
    result = scan_workflow(ui([instance], definitions={"subgraphs": [sg]}))
    assert summary(result) == {("diffusion_models", "inner_value.safetensors", ("subgraph 30 > 5 UNETLoader",))}


def test_subgraph_legacy_instance_values_without_proxy_widgets():
    inner = node(
        5,
        "LoraLoaderModelOnly",
        ["stale.safetensors", 1],
        inputs=[{"name": "lora_name", "type": "COMBO", "widget": {"name": "lora_name"}, "link": 60}],
    )
    sg = _subgraph(
        SG_A,
        [inner],
        inputs=[{"id": "y", "name": "lora_name", "type": "COMBO", "linkIds": [60]}],
        links=[{"id": 60, "origin_id": -10, "origin_slot": 0, "target_id": 5, "target_slot": 1, "type": "COMBO"}],
    )
    instance = node(
        31,
        SG_A,
        [7, "randomize", "promoted.safetensors"],
        properties={},
        inputs=[
            {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": None},
            {"name": "lora_name", "type": "COMBO", "widget": {"name": "lora_name"}, "link": None},
        ],
    )
    second = copy.deepcopy(instance)
    second["id"], second["widgets_values"] = 32, [8, "fixed", "promoted.safetensors"]
    result = scan_workflow(ui([instance, second], definitions={"subgraphs": [sg]}))
    assert summary(result) == {
        (
            "loras",
            "promoted.safetensors",
            ("subgraph 31 > 5 LoraLoaderModelOnly", "subgraph 32 > 5 LoraLoaderModelOnly"),
        )
    }


def test_nested_muted_and_recursive_subgraphs():
    inner_b = _subgraph(SG_B, [node(2, "VAELoader", ["deep_vae.safetensors"]), node(3, SG_A, [])])
    inner_a = _subgraph(
        SG_A,
        [node(1, SG_B, []), node(4, "CLIPVisionLoader", ["vision.safetensors"])],
        definitions={"subgraphs": [inner_b]},
    )
    wf = ui([node(40, SG_A, [], mode=2)], definitions={"subgraphs": [inner_a]})
    result = scan_workflow(wf)  # B contains A again: must not loop
    assert summary(result) == {
        ("vae", "deep_vae.safetensors", ("subgraph 40 > subgraph 1 > 2 VAELoader (muted)",)),
        ("clip_vision", "vision.safetensors", ("subgraph 40 > 4 CLIPVisionLoader (muted)",)),
    }
    assert any("contains itself" in w for w in result.warnings)


# ------------------------------------------------------------------------- ModelRoots


def touch(path: Path, data: bytes = b"weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ref(directory, name) -> ModelRef:
    return ModelRef(name=name, directory=directory, path=normalize_model_path(name), nodes=("1 Test",))


def test_locate_in_root_and_subfolders(tmp_path):
    root = tmp_path / "models"
    a = touch(root / "checkpoints" / "SDXL" / "sd_xl_base_1.0.safetensors")
    roots = ModelRoots.from_settings(root)
    assert roots.locate(ref("checkpoints", "SDXL\\sd_xl_base_1.0.safetensors")) == a
    assert roots.locate(ref("checkpoints", "SDXL/sd_xl_base_1.0.safetensors")) == a
    assert roots.locate(ref("checkpoints", "sd_xl_base_1.0.safetensors")) is None
    assert roots.locate(ref("loras", "SDXL/sd_xl_base_1.0.safetensors")) is None


def test_locate_in_legacy_folders(tmp_path):
    root = tmp_path / "models"
    t5 = touch(root / "clip" / "t5xxl_fp16.safetensors")
    unet = touch(root / "unet" / "flux1-dev.safetensors")
    cn = touch(root / "t2i_adapter" / "t2iadapter_canny.safetensors")
    roots = ModelRoots.from_settings(root)
    assert roots.locate(ref("text_encoders", "t5xxl_fp16.safetensors")) == t5
    assert roots.locate(ref("clip", "t5xxl_fp16.safetensors")) == t5  # legacy name as directory
    assert roots.locate(ref("diffusion_models", "flux1-dev.safetensors")) == unet
    assert roots.locate(ref("unet", "flux1-dev.safetensors")) == unet
    assert roots.locate(ref("controlnet", "t2iadapter_canny.safetensors")) == cn
    # ComfyUI's order: models/text_encoders before models/clip, models/unet before models/diffusion_models
    te = touch(root / "text_encoders" / "t5xxl_fp16.safetensors")
    assert roots.locate(ref("text_encoders", "t5xxl_fp16.safetensors")) == te
    assert roots.directories("diffusion_models") == [root / "unet", root / "diffusion_models"]
    assert roots.directories("clip") == [root / "text_encoders", root / "clip"]


def test_locate_unknown_folder_falls_back_to_model_root(tmp_path):
    root = tmp_path / "models"
    f = touch(root / "ipadapter" / "ip-adapter_sdxl.safetensors")
    roots = ModelRoots.from_settings(root)
    assert roots.locate(ref("ipadapter", "ip-adapter_sdxl.safetensors")) == f
    assert roots.directories("../etc") == []


def test_locate_rejects_part_files_directories_and_escapes(tmp_path):
    root = tmp_path / "models"
    touch(root / "loras" / "downloading.safetensors.part")
    touch(root / "loras" / "odd.part")
    (root / "loras" / "a_directory.safetensors").mkdir(parents=True)
    touch(tmp_path / "outside.safetensors")
    touch(root / "outside.safetensors")
    roots = ModelRoots.from_settings(root)
    assert roots.locate(ref("loras", "downloading.safetensors")) is None
    assert roots.locate(ref("loras", "downloading.safetensors.part")) is None
    assert roots.locate(ref("loras", "odd.part")) is None
    assert roots.locate(ref("loras", "a_directory.safetensors")) is None
    assert roots.locate(ref("loras", "../outside.safetensors")) is None
    assert roots.locate(ref("loras", "..\\..\\outside.safetensors")) is None
    assert roots.locate(ref("loras", str(tmp_path / "outside.safetensors"))) is None
    # a hand-made ref with a raw ".." path is refused as well
    assert roots.locate(ModelRef("x", "loras", "../outside.safetensors", ())) is None
    assert roots.locate(ModelRef("x", "loras", "sub/../../outside.safetensors", ())) is None


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_locate_symlinks(tmp_path):
    root = tmp_path / "models"
    real_inside = touch(root / "checkpoints" / "real.safetensors")
    (root / "loras").mkdir(parents=True)
    os.symlink(real_inside, root / "loras" / "link_inside.safetensors")
    secret = touch(tmp_path / "secret" / "passwd.safetensors")
    os.symlink(secret, root / "loras" / "link_outside.safetensors")
    os.symlink(tmp_path / "nowhere.safetensors", root / "loras" / "broken.safetensors")
    # a whole folder symlinked to a bigger disk is fine: its resolved target is a root
    big = tmp_path / "bigdisk" / "vae"
    vae = touch(big / "ae.safetensors")
    os.symlink(big, root / "vae")
    roots = ModelRoots.from_settings(root)
    assert roots.locate(ref("loras", "link_inside.safetensors")) == root / "loras" / "link_inside.safetensors"
    assert roots.locate(ref("loras", "link_outside.safetensors")) is None
    assert roots.locate(ref("loras", "broken.safetensors")) is None
    assert roots.locate(ref("vae", "ae.safetensors")) == root / "vae" / "ae.safetensors"
    assert vae.exists()


def test_extra_model_paths_fixture_is_parsed_like_comfyui(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    yaml_file = conf / "extra_model_paths.yaml"
    yaml_file.write_text((WORKFLOWS / "extra_model_paths.yaml").read_text())
    root = tmp_path / "models"
    roots = ModelRoots.from_settings(root, yaml_file)
    shared = Path("/srv/comfy-shared")
    webui = tmp_path / "stable-diffusion-webui"  # base_path "../stable-diffusion-webui/" is relative to the YAML
    # is_default: each line goes first, as folder_paths.add_model_folder_path(..., is_default=True) does
    assert roots.folders["checkpoints"] == [
        shared / "archive/sd15-checkpoints",
        shared / "models/checkpoints",
        root / "checkpoints",
        webui / "models/Stable-diffusion",
    ]
    assert roots.folders["text_encoders"] == [shared / "models/clip", root / "text_encoders", root / "clip"]
    assert roots.folders["diffusion_models"] == [shared / "models/unet", root / "unet", root / "diffusion_models"]
    assert roots.folders["loras"] == [
        shared / "models/loras",
        root / "loras",
        webui / "models/Lora",
        webui / "models/LyCORIS",
    ]
    assert roots.folders["upscale_models"] == [
        root / "upscale_models",
        webui / "models/ESRGAN",
        webui / "models/RealESRGAN",
    ]
    assert roots.folders["ipadapter"] == [root / "ipadapter", Path.home() / "other-ui/models/ipadapter"]
    assert "clip" not in roots.folders and "unet" not in roots.folders


def test_locate_in_extra_model_paths_folder(tmp_path):
    root = tmp_path / "comfy" / "models"
    (root / "loras").mkdir(parents=True)
    yaml_file = tmp_path / "extra_model_paths.yaml"
    yaml_file.write_text(
        "a1111:\n"
        "    base_path: webui/\n"
        "    loras: |\n"
        "        models/Lora\n"
        "        models/LyCORIS\n"
        "    clip: models/text\n"
        "nobase:\n"
        "    vae: shared_vae\n"
    )
    lyco = touch(tmp_path / "webui" / "models" / "LyCORIS" / "sub" / "locon.safetensors")
    te = touch(tmp_path / "webui" / "models" / "text" / "clip_g.safetensors")
    vae = touch(tmp_path / "shared_vae" / "sdxl_vae.safetensors")
    roots = ModelRoots.from_settings(root, yaml_file)
    assert roots.locate(ref("loras", "sub\\locon.safetensors")) == lyco
    assert roots.locate(ref("text_encoders", "clip_g.safetensors")) == te
    assert roots.locate(ref("vae", "sdxl_vae.safetensors")) == vae
    # the file in the model root wins over the extra folder (appended, not is_default)
    first = touch(root / "loras" / "sub" / "locon.safetensors")
    assert roots.locate(ref("loras", "sub/locon.safetensors")) == first


def test_extra_model_paths_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        ModelRoots.from_settings(tmp_path, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("comfyui:\n  base_path: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        ModelRoots.from_settings(tmp_path, bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError):
        ModelRoots.from_settings(tmp_path, listy)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing configured\n")
    assert ModelRoots.from_settings(tmp_path, empty).folders == ModelRoots.from_settings(tmp_path).folders


def test_scan_then_locate_end_to_end(tmp_path):
    root = tmp_path / "models"
    touch(root / "checkpoints" / "SDXL" / "sd_xl_base_1.0.safetensors")
    touch(root / "loras" / "add-detail-xl.safetensors.part")
    roots = ModelRoots.from_settings(root)
    found = {(m.directory, m.path): roots.locate(m) for m in scan_file(WORKFLOWS / "ui_sdxl_basic.json").models}
    assert found == {
        ("checkpoints", "SDXL/sd_xl_base_1.0.safetensors"): root
        / "checkpoints"
        / "SDXL"
        / "sd_xl_base_1.0.safetensors",
        ("loras", "add-detail-xl.safetensors"): None,
        ("vae", "sdxl_vae.safetensors"): None,
        ("upscale_models", "4x-UltraSharp.pth"): None,
    }


# ------------------------------------------------------------------------------ speed


def test_scanning_a_thousand_workflows_is_fast(tmp_path):
    names = ["ui_sdxl_basic.json", "ui_flux_subgraph.json", "api_wan_video.json", "api_misc_loaders.json"]
    files = []
    for i in range(1000):
        p = tmp_path / f"wf{i}.json"
        p.write_bytes((WORKFLOWS / names[i % 4]).read_bytes())
        files.append(p)
    start = time.perf_counter()
    total = sum(len(scan_file(p).models) for p in files)
    elapsed = time.perf_counter() - start
    assert total > 0
    assert elapsed < 3.0, f"{elapsed:.2f}s for 1000 workflows"


def test_model_ref_is_frozen_and_hashable():
    m = ModelRef("a.safetensors", "loras", "a.safetensors", ("1 LoraLoader",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.path = "b"  # type: ignore[misc]
    assert {m: 1}[ModelRef("a.safetensors", "loras", "a.safetensors", ("1 LoraLoader",))] == 1


def test_exponential_subgraph_nesting_is_cut_off():
    """Ten instances of a definition that holds ten instances of the next one, 12 levels deep,
    would be 10**12 node visits; the scan stops early instead of hanging."""
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(12)]
    defs = []
    for level, sid in enumerate(ids):
        if level + 1 < len(ids):
            nodes = [node(n, ids[level + 1], []) for n in range(10)]
        else:
            nodes = [node(1, "CheckpointLoaderSimple", ["leaf.safetensors"])]
        defs.append(_subgraph(sid, nodes))
    wf = ui([node(n, ids[0], []) for n in range(10)], definitions={"subgraphs": defs})
    start = time.perf_counter()
    result = scan_workflow(wf)
    assert time.perf_counter() - start < 10
    assert any("scan stopped early" in w for w in result.warnings)


def test_a_workflow_too_large_is_refused_naming_the_limit_as_the_pages_do(tmp_path, monkeypatch):
    monkeypatch.setattr(scanner, "MAX_WORKFLOW_BYTES", 1536)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"nodes": [], "padding": "x" * 2000}))
    with pytest.raises(WorkflowError, match=r"^big\.json: larger than 1\.5 KB, not scanned$"):
        scan_file(big)
