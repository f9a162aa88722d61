"""What ComfyUI nodes load which model files, and where ComfyUI looks for them.

Pure data (no Django, no I/O) used by :mod:`templates_scan.scanner`.

Sources followed (ComfyUI as of late 2025):

* ``folder_paths.py``: the canonical folder names, their default directories under
  ``models/`` (``text_encoders`` also reads ``models/clip``, ``diffusion_models`` also reads
  ``models/unet``, ``controlnet`` also reads ``models/t2i_adapter``) and ``map_legacy``
  (``clip`` -> ``text_encoders``, ``unet`` -> ``diffusion_models``).
* ``nodes.py`` and ``comfy_extras/*``: each loader's ``INPUT_TYPES``/``define_schema``, whose
  widget order is the order of a UI node's ``widgets_values`` list.

To teach the scanner a new node, add one line to :data:`LOADERS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: File extensions that make an arbitrary string look like a model file (used by the
#: heuristics for node types that are not in :data:`LOADERS`). Mirrors the frontend's
#: MODEL_FILE_EXTENSIONS plus ComfyUI's supported_pt_extensions.
MODEL_EXTENSIONS: tuple[str, ...] = (
    ".safetensors",
    ".ckpt",
    ".pt",
    ".pth",
    ".bin",
    ".gguf",
    ".sft",
    ".onnx",
    ".pt2",
    ".pkl",
)

# Shorthands for the table below.
_CKPT = ("ckpt_name", "checkpoints")
_LORA = ("lora_name", "loras")

#: class_type -> widgets in widget order: (input name, folder), folder None for a widget
#: that is not a model file. Trailing non-file widgets may be left out; a non-file widget
#: *before* a file widget must be listed so positions in ``widgets_values`` stay right.
LOADERS: dict[str, tuple[tuple[str, str | None], ...]] = {
    # --- nodes.py
    "CheckpointLoaderSimple": (_CKPT,),
    "CheckpointLoader": (("config_name", "configs"), _CKPT),
    "unCLIPCheckpointLoader": (_CKPT,),
    "LoraLoader": (_LORA, ("strength_model", None), ("strength_clip", None)),
    "LoraLoaderModelOnly": (_LORA, ("strength_model", None)),
    "VAELoader": (("vae_name", "vae"),),  # also offers "taesd"/"pixel_space": no extension, ignored
    "UNETLoader": (("unet_name", "diffusion_models"), ("weight_dtype", None)),
    "CLIPLoader": (("clip_name", "text_encoders"), ("type", None), ("device", None)),
    "DualCLIPLoader": (
        ("clip_name1", "text_encoders"),
        ("clip_name2", "text_encoders"),
        ("type", None),
        ("device", None),
    ),
    "CLIPVisionLoader": (("clip_name", "clip_vision"),),
    "ControlNetLoader": (("control_net_name", "controlnet"),),
    "DiffControlNetLoader": (("control_net_name", "controlnet"),),  # its "model" input is a link
    "StyleModelLoader": (("style_model_name", "style_models"),),
    "GLIGENLoader": (("gligen_name", "gligen"),),
    # --- comfy_extras
    "UpscaleModelLoader": (("model_name", "upscale_models"),),
    "LatentUpscaleModelLoader": (("model_name", "latent_upscale_models"),),
    "ImageOnlyCheckpointLoader": (_CKPT,),
    "HypernetworkLoader": (("hypernetwork_name", "hypernetworks"), ("strength", None)),
    "PhotoMakerLoader": (("photomaker_model_name", "photomaker"),),
    "TripleCLIPLoader": (
        ("clip_name1", "text_encoders"),
        ("clip_name2", "text_encoders"),
        ("clip_name3", "text_encoders"),
    ),
    "QuadrupleCLIPLoader": (
        ("clip_name1", "text_encoders"),
        ("clip_name2", "text_encoders"),
        ("clip_name3", "text_encoders"),
        ("clip_name4", "text_encoders"),
    ),
    "ModelPatchLoader": (("name", "model_patches"),),
    "AudioEncoderLoader": (("audio_encoder_name", "audio_encoders"),),
    "LTXVAudioVAELoader": (_CKPT,),
    "LTXAVTextEncoderLoader": (("text_encoder", "text_encoders"), _CKPT, ("device", None)),
    "CreateHookLora": (_LORA, ("strength_model", None), ("strength_clip", None)),
    "CreateHookLoraModelOnly": (_LORA, ("strength_model", None)),
    "CreateHookModelAsLora": (_CKPT, ("strength_model", None), ("strength_clip", None)),
    "CreateHookModelAsLoraModelOnly": (_CKPT, ("strength_model", None)),
    "LoraLoaderBypass": (_LORA, ("strength_model", None), ("strength_clip", None)),
    "LoraLoaderBypassModelOnly": (_LORA, ("strength_model", None)),
    # --- widespread custom nodes
    # Lightricks/ComfyUI-LTXVideo: LTX-2's Gemma text encoder, then the checkpoint it reads its
    # projection from (seen in Comfy-Org's own LTX-2 template)
    "LTXVGemmaCLIPModelLoader": (("gemma_path", "text_encoders"), ("ltxv_path", "checkpoints"), ("max_length", None)),
    "UnetLoaderGGUF": (("unet_name", "diffusion_models"),),  # city96/ComfyUI-GGUF
    "UnetLoaderGGUFAdvanced": (("unet_name", "diffusion_models"),),
    "CLIPLoaderGGUF": (("clip_name", "text_encoders"), ("type", None)),
    "DualCLIPLoaderGGUF": (("clip_name1", "text_encoders"), ("clip_name2", "text_encoders"), ("type", None)),
    "TripleCLIPLoaderGGUF": (
        ("clip_name1", "text_encoders"),
        ("clip_name2", "text_encoders"),
        ("clip_name3", "text_encoders"),
    ),
    "QuadrupleCLIPLoaderGGUF": (
        ("clip_name1", "text_encoders"),
        ("clip_name2", "text_encoders"),
        ("clip_name3", "text_encoders"),
        ("clip_name4", "text_encoders"),
    ),
    "WanVideoModelLoader": (("model", "diffusion_models"),),  # kijai/ComfyUI-WanVideoWrapper
    "WanVideoVAELoader": (("model_name", "vae"),),
    "LoadWanVideoT5TextEncoder": (("model_name", "text_encoders"),),
    "WanVideoLoraSelect": (("lora", "loras"),),
    "IPAdapterModelLoader": (("ipadapter_file", "ipadapter"),),  # cubiq/ComfyUI_IPAdapter_plus
    "InstantIDModelLoader": (("instantid_file", "instantid"),),
    "ADE_LoadAnimateDiffModel": (("model_name", "animatediff_models"),),
    "ADE_AnimateDiffLoaderGen1": (("model_name", "animatediff_models"),),
    "SAMLoader": (("model_name", "sams"),),  # ltdrdata Impact Pack
    "UltralyticsDetectorProvider": (("model_name", "ultralytics"),),
    "CheckpointLoader|pysssss": (_CKPT,),
    "LoraLoader|pysssss": (_LORA, ("strength_model", None), ("strength_clip", None)),
}

#: class_type -> what the node downloads by itself and where: the model files its widgets name
#: are fetched by the node into its own folder, so they never make a workflow incompatible.
MANAGED_BY_NODE: dict[str, str] = {
    # Fannovel16/comfyui_controlnet_aux: node_wrappers/dwpose.py fetches from yzd-v/DWPose
    "DWPreprocessor": "custom_nodes/comfyui_controlnet_aux/ckpts (yolox, dw-ll_ucoco)",
}


@dataclass(frozen=True)
class Stacker:
    """A node listing several files of one folder: each row is (input name of the file, input
    name of its on/off switch or None)."""

    folder: str
    rows: tuple[tuple[str, str | None], ...]


#: class_type -> its rows (lora stacks, model lists).
STACKERS: dict[str, Stacker] = {
    # Suzie1/ComfyUI_Comfyroll_CustomNodes: CR LoRA Stack
    "CR LoRA Stack": Stacker("loras", tuple((f"lora_name_{i}", f"switch_{i}") for i in (1, 2, 3))),
}

#: class_type -> (folder, file key, on key) for nodes whose widgets hold one dict per row.
DICT_ROW_NODES: dict[str, tuple[str, str, str]] = {
    "Power Lora Loader (rgthree)": ("loras", "lora", "on"),
}

#: Node types that hold no model reference of their own (virtual/UI-only nodes). A
#: PrimitiveNode feeding a loader's widget copies its value into that widget, so the
#: loader reports it; scanning the primitive too would only add noise.
SKIP_TYPES: frozenset[str] = frozenset(
    {
        "PrimitiveNode",
        "Reroute",
        "Note",
        "MarkdownNote",
        "Label (rgthree)",
        # comfy_extras/nodes_string.py: text that may be pieces of a file name, never a file
        "StringConcatenate",
    }
)

# ---------------------------------------------------------------- heuristics (unknown types)

#: Input names that say which folder a model-file value belongs to.
INPUT_NAME_FOLDERS: dict[str, str] = {
    "ckpt_name": "checkpoints",
    "ckpt": "checkpoints",
    "checkpoint": "checkpoints",
    "checkpoint_name": "checkpoints",
    "lora_name": "loras",
    "lora": "loras",
    "vae_name": "vae",
    "vae": "vae",
    "unet_name": "diffusion_models",
    "diffusion_model": "diffusion_models",
    "diffusion_model_name": "diffusion_models",
    "text_encoder": "text_encoders",
    "text_encoder_name": "text_encoders",
    "t5_name": "text_encoders",
    "clip_vision_name": "clip_vision",
    "clip_vision": "clip_vision",
    "control_net_name": "controlnet",
    "controlnet_name": "controlnet",
    "controlnet": "controlnet",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "upscale_model": "upscale_models",
    "upscale_model_name": "upscale_models",
    "photomaker_model_name": "photomaker",
    "ipadapter_file": "ipadapter",
    "ipadapter_name": "ipadapter",
    "instantid_file": "instantid",
    "audio_encoder_name": "audio_encoders",
    "embedding_name": "embeddings",
}

#: Name patterns: clip_name, clip_name1..4, clip_l_name, text_encoder2, lora_1, lora_name_2...
INPUT_NAME_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^clip(_[lg])?_name_?\d*$"), "text_encoders"),
    (re.compile(r"^(t5|t5xxl|umt5|llm|llama|gemma|qwen)_?(model_)?(name|path)$"), "text_encoders"),
    (re.compile(r"^text_encoder_?\d+$"), "text_encoders"),
    (re.compile(r"^lora(_name)?_?\d+$"), "loras"),
    (re.compile(r"^(ckpt|checkpoint)_name_?\d+$"), "checkpoints"),
    (re.compile(r"^vae_name_?\d+$"), "vae"),
    (re.compile(r"^unet_name_?\d+$"), "diffusion_models"),
)

#: Input names too generic to decide alone ("model_name" of an upscaler, of a SAM model, ...):
#: only the node type can tell.
GENERIC_INPUT_NAMES: frozenset[str] = frozenset(
    {
        "model_name",
        "model",
        "name",
        "model_path",
        "model_file",
        "file",
        "filename",
        "file_name",
    }
)

#: Fragments of a node type (lower-cased, without spaces/underscores/dashes) -> folder.
#: Used only for generic or unknown input names; a type matching two folders decides nothing.
TYPE_KEYWORD_FOLDERS: tuple[tuple[str, str], ...] = (
    ("clipvision", "clip_vision"),
    ("controlnet", "controlnet"),
    ("latentupscale", "latent_upscale_models"),
    ("upscale", "upscale_models"),
    ("lora", "loras"),
    ("ipadapter", "ipadapter"),
    ("checkpoint", "checkpoints"),
    ("ckpt", "checkpoints"),
    ("unet", "diffusion_models"),
    ("diffusionmodel", "diffusion_models"),
    ("vae", "vae"),
    ("textencoder", "text_encoders"),
    ("clip", "text_encoders"),
    ("stylemodel", "style_models"),
    ("photomaker", "photomaker"),
    ("hypernetwork", "hypernetworks"),
    ("gligen", "gligen"),
    ("animatediff", "animatediff_models"),
)

#: Values the frontend stores right after a seed widget ("control_after_generate").
CONTROL_AFTER_GENERATE_VALUES: frozenset[str] = frozenset({"fixed", "increment", "decrement", "randomize"})


def folder_from_type(node_type: str) -> str | None:
    """The one folder a node type's name suggests, or None when it suggests none or several."""
    t = re.sub(r"[\s_\-]", "", node_type.lower())
    found: set[str] = set()
    for fragment, folder in TYPE_KEYWORD_FOLDERS:
        if fragment in t:
            found.add(folder)
    if "clip_vision" in found:
        found.discard("text_encoders")  # "clipvision" also contains "clip"
    if "latent_upscale_models" in found:
        found.discard("upscale_models")
    return found.pop() if len(found) == 1 else None


def folder_from_input(node_type: str, input_name: str | None) -> str | None:
    """Folder for a model-file value of an unknown node type, from its input name (and, for
    generic names such as ``model_name``, from the node type). None when nothing suggests one."""
    if input_name is not None:
        name = input_name.lower()
        folder = INPUT_NAME_FOLDERS.get(name)
        if folder is None:
            for pattern, pattern_folder in INPUT_NAME_PATTERNS:
                if pattern.match(name):
                    folder = pattern_folder
                    break
        if folder is not None:
            # A CLIP-vision node's "clip_name" is a clip_vision file, not a text encoder.
            if folder == "text_encoders" and name.startswith("clip") and folder_from_type(node_type) == "clip_vision":
                return "clip_vision"
            return folder
        if name not in GENERIC_INPUT_NAMES:
            return None
    return folder_from_type(node_type)
