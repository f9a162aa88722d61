"""What ComfyUI nodes load which model files, and where ComfyUI looks for them.

Pure data (no Django, no I/O) used by :mod:`templates_scan.scanner`.

Sources followed (ComfyUI as of late 2025):

* ``folder_paths.py``: the canonical folder names, their default directories under
  ``models/`` (``text_encoders`` also reads ``models/clip``, ``diffusion_models`` also reads
  ``models/unet``, ``controlnet`` also reads ``models/t2i_adapter``) and ``map_legacy``
  (``clip`` -> ``text_encoders``, ``unet`` -> ``diffusion_models``).
* ``nodes.py`` and ``comfy_extras/*``: each loader's ``INPUT_TYPES``/``define_schema``, whose
  widget order is the order of a UI node's ``widgets_values`` list.

Custom node packs: each entry names the pack's source file it was checked against (the
node's ``INPUT_TYPES``/``define_schema`` and the ``folder_paths`` folder its list comes from);
the commit read is in ``tests/fixtures/custom_nodes/SOURCES.md``. Checked and left out, because
their widgets name no file (presets, Hugging Face repo ids, folder names without an extension):
IPAdapterUnifiedLoader / IPAdapterInsightFaceLoader, InstantIDFaceAnalysis, the LivePortraitKJ
loaders, DownloadAndLoadFlorence2Model / Florence2ModelLoader, ComfyUI_LayerStyle's nodes,
Nunchaku's SVDQuant model folders (a ``.safetensors`` file in the same widget is listed).

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
_VAE = ("vae_name", "vae")
#: The frontend stores an extra widget value right after a seed widget; a row for it keeps
#: the positions of the widgets behind a seed right.
_SEED = (("seed", None), ("control_after_generate", None))


def _repeat(count: int, *rows: tuple[str, str | None]) -> tuple[tuple[str, str | None], ...]:
    """Rows for numbered widget groups: ``("lora_name_{}", "loras")`` -> lora_name_1, lora_name_2..."""
    return tuple((name.format(i), folder) for i in range(1, count + 1) for name, folder in rows)


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
    # --- custom node packs (issue 17); the file named is the one whose INPUT_TYPES was read
    # jags111/efficiency-nodes-comfyui efficiency_nodes.py
    "Efficient Loader": (_CKPT, _VAE, ("clip_skip", None), _LORA),
    "Eff. Loader SDXL": (
        ("base_ckpt_name", "checkpoints"),
        ("base_clip_skip", None),
        ("refiner_ckpt_name", "checkpoints"),
        ("refiner_clip_skip", None),
        ("positive_ascore", None),
        ("negative_ascore", None),
        _VAE,
    ),
    "HighRes-Fix Script": (
        ("upscale_type", None),
        ("hires_ckpt_name", "checkpoints"),
        ("latent_upscaler", None),
        ("pixel_upscaler", "upscale_models"),
        ("upscale_by", None),
        ("use_same_seed", None),
        *_SEED,
        ("hires_steps", None),
        ("denoise", None),
        ("iterations", None),
        ("use_controlnet", None),
        ("control_net_name", "controlnet"),
    ),
    "Tiled Upscaler Script": (
        ("upscale_by", None),
        ("tile_size", None),
        ("tiling_strategy", None),
        ("tiling_steps", None),
        *_SEED,
        ("denoise", None),
        ("use_controlnet", None),
        ("tile_controlnet", "controlnet"),
    ),
    "LoRA Stacker": (
        ("input_mode", None),
        ("lora_count", None),
        *_repeat(50, ("lora_name_{}", "loras"), ("lora_wt_{}", None), ("model_str_{}", None), ("clip_str_{}", None)),
    ),
    "XY Input: LoRA Plot": (("input_mode", None), _LORA),
    # SeargeDP/SeargeSDXL modules/ui_model_selector.py, ui_loras.py, ui_upscale_models.py,
    # ui_controlnet_models.py (lists from modules/ui.py), modules/_legacy.py
    "SeargeModelSelector": (
        ("base_checkpoint", "checkpoints"),
        ("refiner_checkpoint", "checkpoints"),
        ("vae_checkpoint", "vae"),
    ),
    "SeargeLoras": _repeat(5, ("lora_{}", "loras"), ("lora_{}_strength", None)),
    "SeargeUpscaleModels": (
        ("detail_processor", "upscale_models"),
        ("high_res_upscaler", "upscale_models"),
        ("primary_upscaler", "upscale_models"),
        ("secondary_upscaler", "upscale_models"),
    ),
    "SeargeControlnetModels": (
        ("clip_vision", "clip_vision"),
        ("canny_checkpoint", "controlnet"),
        ("depth_checkpoint", "controlnet"),
        ("recolor_checkpoint", "controlnet"),
        ("sketch_checkpoint", "controlnet"),
        ("custom_checkpoint", "controlnet"),
    ),
    "SeargeInput4": (
        ("base_model", "checkpoints"),
        ("refiner_model", "checkpoints"),
        ("vae_model", "vae"),
        ("main_upscale_model", "upscale_models"),
        ("support_upscale_model", "upscale_models"),
        ("lora_model", "loras"),
    ),
    # TinyTerra/ComfyUI_tinyterraNodes ttNpy/tinyterraNodes.py (v2 nodes), ttNpy/ttNlegacyNodes.py
    "ttN pipeLoader": (
        _CKPT,
        ("config_name", "configs"),
        _VAE,
        ("clip_skip", None),
        *_repeat(3, ("lora{}_name", "loras"), ("lora{}_model_strength", None), ("lora{}_clip_strength", None)),
    ),
    "ttN pipeLoaderSDXL": (
        _CKPT,
        _VAE,
        *_repeat(2, ("lora{}_name", "loras"), ("lora{}_model_strength", None), ("lora{}_clip_strength", None)),
        ("refiner_ckpt_name", "checkpoints"),
        ("refiner_vae_name", "vae"),
        *_repeat(
            2,
            ("refiner_lora{}_name", "loras"),
            ("refiner_lora{}_model_strength", None),
            ("refiner_lora{}_clip_strength", None),
        ),
    ),
    "ttN pipeLoader_v2": (_CKPT, ("config_name", "configs"), _VAE),
    "ttN pipeLoaderSDXL_v2": (
        _CKPT,
        ("config_name", "configs"),
        _VAE,
        ("clip_skip", None),
        ("loras", None),  # "<lora:name:strength>" prompt text, not a file widget
        ("refiner_ckpt_name", "checkpoints"),
        ("refiner_config_name", "configs"),
    ),
    "ttN tinyLoader": (
        _CKPT,
        ("config_name", "configs"),
        ("sampling", None),
        ("zsnr", None),
        ("cfg_rescale_mult", None),
        _VAE,
    ),
    "ttN multiModelMerge": (
        ("ckpt_A_name", "checkpoints"),
        ("config_A_name", "configs"),
        ("ckpt_B_name", "checkpoints"),
        ("config_B_name", "configs"),
        ("ckpt_C_name", "checkpoints"),
        ("config_C_name", "configs"),
    ),
    "ttN pipeKSampler": (_LORA,),
    "ttN pipeKSamplerAdvanced": (_LORA,),
    "ttN pipeKSampler_v2": (
        _LORA,
        ("lora_strength", None),
        ("upscale_method", None),
        ("upscale_model_name", "upscale_models"),
    ),
    "ttN pipeKSamplerAdvanced_v2": (
        _LORA,
        ("lora_strength", None),
        ("upscale_method", None),
        ("upscale_model_name", "upscale_models"),
    ),
    "ttN pipeKSamplerSDXL_v2": (
        _LORA,
        ("lora_strength", None),
        ("upscale_method", None),
        ("upscale_model_name", "upscale_models"),
    ),
    "ttN KSampler_v2": (
        _LORA,
        ("lora_strength", None),
        ("upscale_method", None),
        ("upscale_model_name", "upscale_models"),
    ),
    "ttN hiresfixScale": (("model_name", "upscale_models"),),
    # Suzie1/ComfyUI_Comfyroll_CustomNodes nodes/nodes_lora.py, nodes_animation_lists.py,
    # nodes_model_merge.py, nodes_upscale.py, nodes_core.py, nodes_animation_schedulers.py
    "CR Load LoRA": (("switch", None), _LORA, ("strength_model", None), ("strength_clip", None)),
    "CR LoRA Stack": _repeat(
        3, ("switch_{}", None), ("lora_name_{}", "loras"), ("model_weight_{}", None), ("clip_weight_{}", None)
    ),
    "CR Random LoRA Stack": (
        ("exclusive_mode", None),
        ("stride", None),
        ("force_randomize_after_stride", None),
        *_repeat(
            3,
            ("lora_name_{}", "loras"),
            ("switch_{}", None),
            ("chance_{}", None),
            ("model_weight_{}", None),
            ("clip_weight_{}", None),
        ),
    ),
    "CR Random Weight LoRA": (("stride", None), ("force_randomize_after_stride", None), _LORA),
    "CR LoRA List": _repeat(
        3, ("lora_name{}", "loras"), ("alias{}", None), ("model_strength_{}", None), ("clip_strength_{}", None)
    ),
    "CR Model List": _repeat(5, ("ckpt_name{}", "checkpoints"), ("alias{}", None)),
    "CR Model Merge Stack": _repeat(
        3, ("switch_{}", None), ("ckpt_name{}", "checkpoints"), ("model_ratio{}", None), ("clip_ratio{}", None)
    ),
    "CR Select Model": _repeat(5, ("ckpt_name{}", "checkpoints")),
    "CR Multi Upscale Stack": _repeat(
        3, ("switch_{}", None), ("upscale_model_{}", "upscale_models"), ("rescale_factor_{}", None)
    ),
    "CR Upscale Image": (("upscale_model", "upscale_models"),),
    "CR Load Scheduled LoRAs": (
        ("mode", None),
        ("current_frame", None),
        ("schedule_alias", None),
        ("default_lora", "loras"),
    ),
    "CR Load Scheduled Models": (
        ("mode", None),
        ("current_frame", None),
        ("schedule_alias", None),
        ("default_model", "checkpoints"),
    ),
    # rgthree/rgthree-comfy py/lora_stack.py (Power Lora Loader: see DICT_ROW_NODES)
    "Lora Loader Stack (rgthree)": _repeat(4, ("lora_0{}", "loras"), ("strength_0{}", None)),
    # TencentQQGYLab/ComfyUI-ELLA ella.py
    "ELLALoader": (("name", "ella"),),
    # nullquant/ComfyUI-BrushNet brushnet_nodes.py (get_files_with_extension("inpaint"/"clip"))
    "BrushNetLoader": (("brushnet", "inpaint"), ("dtype", None)),
    "PowerPaintCLIPLoader": (("base", "text_encoders"), ("powerpaint", "inpaint")),
    # Acly/comfyui-inpaint-nodes nodes.py
    "INPAINT_LoadFooocusInpaint": (("head", "inpaint"), ("patch", "inpaint")),
    "INPAINT_LoadInpaintModel": (("model_name", "inpaint"),),
    # cubiq/PuLID_ComfyUI pulid.py; balazik/ComfyUI-PuLID-Flux pulidflux.py
    "PulidModelLoader": (("pulid_file", "pulid"),),
    "PulidFluxModelLoader": (("pulid_file", "pulid"),),
    # ltdrdata/ComfyUI-Impact-Pack modules/impact/impact_pack.py, legacy_nodes.py, mmdet_nodes.py
    "MMDetLoader": (("model_name", "mmdets/bbox"),),
    "MMDetDetectorProvider": (("model_name", "mmdets/bbox"),),
    "ONNXDetectorProvider": (("model_name", "onnx"),),
    # ltdrdata/ComfyUI-Inspire-Pack inspire/backend_support.py, lora_block_weight.py, prompt_support.py
    "CheckpointLoaderSimpleShared //Inspire": (_CKPT,),
    "LoadDiffusionModelShared //Inspire": (("model_name", "diffusion_models"),),
    "LoadTextEncoderShared //Inspire": (
        ("model_name1", "text_encoders"),
        ("model_name2", "text_encoders"),
        ("model_name3", "text_encoders"),
    ),
    "StableCascade_CheckpointLoader //Inspire": (
        ("stage_b", "checkpoints"),
        ("key_opt_b", None),
        ("stage_c", "checkpoints"),
    ),
    "MakeBasicPipe //Inspire": (_CKPT,),
    "LoraLoaderBlockWeight //Inspire": (("category_filter", None), _LORA),
    "MakeLBW //Inspire": (("category_filter", None), _LORA),
    "XY Input: Lora Block Weight //Inspire": (("category_filter", None), _LORA),
    "LoraBlockInfo //Inspire": (_LORA,),
    "LoadLBW //Inspire": (("lbw_model", "lbw_models"),),
    # Gourieff/comfyui-reactor-node nodes.py (swap models: models/insightface; restorers:
    # models/facerestore_models; face models: models/reactor/faces)
    "ReActorFaceSwap": (
        ("enabled", None),
        ("swap_model", "insightface"),
        ("facedetection", None),
        ("face_restore_model", "facerestore_models"),
    ),
    "ReActorFaceSwapOpt": (
        ("enabled", None),
        ("swap_model", "insightface"),
        ("facedetection", None),
        ("face_restore_model", "facerestore_models"),
    ),
    "ReActorFaceBoost": (("enabled", None), ("boost_model", "facerestore_models")),
    "ReActorRestoreFace": (("facedetection", None), ("model", "facerestore_models")),
    "ReActorMaskHelper": (
        ("bbox_model_name", "ultralytics"),  # "bbox/..." or "segm/...", as Impact's detector
        ("bbox_threshold", None),
        ("bbox_dilation", None),
        ("bbox_crop_factor", None),
        ("bbox_drop_size", None),
        ("sam_model_name", "sams"),
    ),
    "ReActorLoadFaceModel": (("face_model", "reactor/faces"),),
    # MinusZoneAI/ComfyUI-Kolors-MZ __init__.py (folder "LLM" = models/LLM)
    "MZ_ChatGLM3Loader": (("chatglm3_checkpoint", "LLM"),),
    "MZ_KolorsUNETLoaderV2": (("unet_name", "diffusion_models"),),
    "MZ_KolorsCheckpointLoaderSimple": (_CKPT,),
    "MZ_KolorsControlNetLoader": (("control_net_name", "controlnet"),),
    # kijai/ComfyUI-FluxTrainer nodes.py, nodes_sd3.py, nodes_sdxl.py ("unet"/"clip" are the
    # legacy names of diffusion_models/text_encoders)
    "FluxTrainModelSelect": (
        ("transformer", "diffusion_models"),
        ("vae", "vae"),
        ("clip_l", "text_encoders"),
        ("t5", "text_encoders"),
    ),
    "SD3ModelSelect": (
        ("transformer", "checkpoints"),
        ("clip_l", "text_encoders"),
        ("clip_g", "text_encoders"),
        ("t5", "text_encoders"),
    ),
    "SDXLModelSelect": (("checkpoint", "checkpoints"),),
    "ExtractFluxLoRA": (("original_model", "diffusion_models"), ("finetuned_model", "diffusion_models")),
    # kijai/ComfyUI-HunyuanVideoWrapper nodes.py
    "HyVideoModelLoader": (("model", "diffusion_models"),),
    "HyVideoVAELoader": (("model_name", "vae"),),
    "HyVideoLoraSelect": (("lora", "loras"),),
    # kijai/ComfyUI-CogVideoXWrapper model_loading.py (cogvideox_loras = models/CogVideo/loras)
    "CogVideoXModelLoader": (("model", "diffusion_models"),),
    "CogVideoXVAELoader": (("model_name", "vae"),),
    "CogVideoLoraSelect": (("lora", "CogVideo/loras"),),
    "CogVideoLoraSelectComfy": (("lora", "loras"),),
    # kijai/ComfyUI-WanVideoWrapper nodes.py (its CLIP model is listed from text_encoders)
    "LoadWanVideoClipTextEncoder": (("model_name", "text_encoders"),),
    # kijai/ComfyUI-KJNodes nodes/model_optimization_nodes.py, nodes/nodes.py
    "CheckpointLoaderKJ": (_CKPT,),
    "DiffusionModelLoaderKJ": (("model_name", "diffusion_models"),),
    "DiffusionModelSelector": (("model_name", "diffusion_models"),),
    "DiTBlockLoraLoader": (("strength_model", None), _LORA),
    # kijai/ComfyUI-SUPIR nodes.py, nodes_v2.py
    "SUPIR_Upscale": (("supir_model", "checkpoints"), ("sdxl_model", "checkpoints")),
    "SUPIR_model_loader": (("supir_model", "checkpoints"), ("sdxl_model", "checkpoints")),
    "SUPIR_model_loader_v2": (("supir_model", "checkpoints"),),
    "SUPIR_model_loader_v2_clip": (("supir_model", "checkpoints"),),
    # mit-han-lab/ComfyUI-nunchaku nodes/models/flux.py (a model folder or a .safetensors file),
    # nodes/lora/flux.py, nodes/models/text_encoder.py, nodes/models/pulid.py
    "NunchakuFluxDiTLoader": (("model_path", "diffusion_models"),),
    "NunchakuFluxLoraLoader": (_LORA, ("lora_strength", None)),
    "NunchakuTextEncoderLoader": (
        ("model_type", None),
        ("text_encoder1", "text_encoders"),
        ("text_encoder2", "text_encoders"),
    ),
    "NunchakuTextEncoderLoaderV2": (
        ("model_type", None),
        ("text_encoder1", "text_encoders"),
        ("text_encoder2", "text_encoders"),
    ),
    "NunchakuPuLIDLoaderV2": (("pulid_file", "pulid"), ("eva_clip_file", "text_encoders")),
    # WASasquatch/was-node-suite-comfyui WAS_Node_Suite.py
    "Checkpoint Loader": (("config_name", "configs"), _CKPT),
    "Checkpoint Loader (Simple)": (_CKPT,),
    "unCLIP Checkpoint Loader": (_CKPT,),
    "Lora Loader": (_LORA, ("strength_model", None), ("strength_clip", None)),
    "Load Lora": (_LORA, ("strength_model", None), ("strength_clip", None)),
    "Upscale Model Loader": (("model_name", "upscale_models"),),
    # Kosinkadink/ComfyUI-AnimateDiff-Evolved animatediff/nodes_*.py (get_available_motion_models:
    # animatediff_models; get_available_motion_loras: animatediff_motion_lora)
    "ADE_AnimateDiffLoRALoader": (("name", "animatediff_motion_lora"), ("strength", None)),
    "ADE_LoadAnimateLCMI2VModel": (("model_name", "animatediff_models"),),
    "ADE_InjectI2VIntoAnimateDiffModel": (("model_name", "animatediff_models"),),
    "ADE_InjectPIAIntoAnimateDiffModel": (("model_name", "animatediff_models"),),
    "ADE_LoadAnimateDiffModelWithCameraCtrl": (
        ("model_name", "animatediff_models"),
        ("camera_ctrl", "animatediff_models"),
    ),
    "ADE_AnimateDiffLoaderWithContext": (("model_name", "animatediff_models"),),
    "ADE_AnimateDiffLoaderV1Advanced": (("model_name", "animatediff_models"),),
    "ADE_RegisterLoraHook": (_LORA,),
    "ADE_RegisterLoraHookModelOnly": (_LORA,),
    "ADE_RegisterModelAsLoraHook": (_CKPT,),
    "ADE_RegisterModelAsLoraHookModelOnly": (_CKPT,),
    "CheckpointLoaderSimpleWithNoiseSelect": (_CKPT,),
    # Kosinkadink/ComfyUI-Advanced-ControlNet adv_control/nodes_main.py, nodes_deprecated.py,
    # nodes_sparsectrl.py, nodes_plusplus.py, nodes_ctrlora.py
    "ACN_ControlNetLoaderAdvanced": (("cnet", "controlnet"),),
    "ACN_DiffControlNetLoaderAdvanced": (("cnet", "controlnet"),),
    "ControlNetLoaderAdvanced": (("control_net_name", "controlnet"),),
    "DiffControlNetLoaderAdvanced": (("control_net_name", "controlnet"),),
    "ACN_SparseCtrlLoaderAdvanced": (("sparsectrl_name", "controlnet"),),
    "ACN_SparseCtrlMergedLoaderAdvanced": (("sparsectrl_name", "controlnet"), ("control_net_name", "controlnet")),
    "ACN_ControlNet++LoaderAdvanced": (("name", "controlnet"),),
    "ACN_ControlNet++LoaderSingle": (("name", "controlnet"),),
    "ACN_CtrLoRALoader": (("base", "controlnet"), ("lora", "controlnet")),
    "ACN_AnimaLLLiteLoaderAdvanced": (("model_patch", "model_patches"),),
}

#: Folders the packs above register (``folder_paths.add_model_folder_path`` or their own
#: ``models/<dir>`` lookups) that ComfyUI itself does not know -> the pack and the directory under
#: ``models/`` it reads. The folder names are the directory paths, so a file is looked for where
#: the pack looks (``sams`` -> ``models/sams``).
CUSTOM_FOLDERS: dict[str, str] = {
    "ipadapter": "cubiq/ComfyUI_IPAdapter_plus: models/ipadapter",
    "instantid": "cubiq/ComfyUI_InstantID: models/instantid",
    "pulid": "cubiq/PuLID_ComfyUI, balazik/ComfyUI-PuLID-Flux, nunchaku: models/pulid",
    "animatediff_models": "Kosinkadink/ComfyUI-AnimateDiff-Evolved: models/animatediff_models",
    "animatediff_motion_lora": "Kosinkadink/ComfyUI-AnimateDiff-Evolved: models/animatediff_motion_lora",
    "sams": "ltdrdata/ComfyUI-Impact-Pack, comfyui-reactor-node: models/sams",
    "ultralytics": "ltdrdata/ComfyUI-Impact-Subpack, comfyui-reactor-node: models/ultralytics (bbox/, segm/)",
    "mmdets/bbox": "ltdrdata/ComfyUI-Impact-Pack (mmdets_bbox): models/mmdets/bbox",
    "onnx": "ltdrdata/ComfyUI-Impact-Pack: models/onnx",
    "lbw_models": "ltdrdata/ComfyUI-Inspire-Pack: models/lbw_models",
    "insightface": "Gourieff/comfyui-reactor-node (swap models): models/insightface",
    "facerestore_models": "Gourieff/comfyui-reactor-node: models/facerestore_models",
    "reactor/faces": "Gourieff/comfyui-reactor-node (saved face models): models/reactor/faces",
    "ella": "TencentQQGYLab/ComfyUI-ELLA: models/ella",
    "inpaint": "Acly/comfyui-inpaint-nodes, nullquant/ComfyUI-BrushNet: models/inpaint",
    "LLM": "MinusZoneAI/ComfyUI-Kolors-MZ (ChatGLM3): models/LLM",
    "CogVideo/loras": "kijai/ComfyUI-CogVideoXWrapper (cogvideox_loras): models/CogVideo/loras",
}

#: Nodes whose model widgets name files the node downloads by itself, into its own folder, the
#: first time it runs -> what it fetches and where. Their refs are reported as managed by the
#: node: a server without the file can still run the workflow.
MANAGED_BY_NODE: dict[str, str] = {
    # Fannovel16/comfyui_controlnet_aux node_wrappers/*.py: from_pretrained() into its ckpts dir
    "DWPreprocessor": "custom_nodes/comfyui_controlnet_aux/ckpts (yolox / yolo_nas detector, dw-ll_ucoco pose model)",
    "AnimalPosePreprocessor": "custom_nodes/comfyui_controlnet_aux/ckpts (yolox detector, rtmpose-m_ap10k)",
    "DepthAnythingPreprocessor": "custom_nodes/comfyui_controlnet_aux/ckpts (depth_anything_vit*14.pth)",
    "DepthAnythingV2Preprocessor": "custom_nodes/comfyui_controlnet_aux/ckpts (depth_anything_v2_vit*.pth)",
    "Unimatch_OptFlowPreprocessor": "custom_nodes/comfyui_controlnet_aux/ckpts (gmflow-*.pth)",
    # kijai/ComfyUI-segment-anything-2 nodes.py: snapshot_download of Kijai/sam2-safetensors
    "DownloadAndLoadSAM2Model": "models/sam2 (Kijai/sam2-safetensors)",
    # Fannovel16/ComfyUI-Frame-Interpolation vfi_models/*/__init__.py: load_file_from_github_release
    **{
        f"{name} VFI": "custom_nodes/ComfyUI-Frame-Interpolation/ckpts/<model> (release assets)"
        for name in (
            "RIFE",
            "FILM",
            "GMFSS Fortuna",
            "IFRNet",
            "IFUnet",
            "M2M",
            "Sepconv",
            "AMT",
            "STMFNet",
            "FLAVR",
            "CAIN",
            "ATM",
            "MOMO",
        )
    },
}


@dataclass(frozen=True)
class Stacker:
    """A node holding several model files of one folder, each row with an optional on/off
    switch: every row is a reference, a switched-off row an inactive one. The widget positions
    come from the node's :data:`LOADERS` entry."""

    folder: str
    rows: tuple[tuple[str, str | None], ...]  # (file input name, switch input name or None)


def _stack(folder: str, count: int, file: str, switch: str | None = None) -> Stacker:
    """A stacker whose rows are numbered: ``_stack("loras", 3, "lora_name_{}", "switch_{}")``."""
    return Stacker(folder, tuple((file.format(i), switch.format(i) if switch else None) for i in range(1, count + 1)))


#: Stacker and list nodes (every one also in :data:`LOADERS`).
STACKERS: dict[str, Stacker] = {
    "LoRA Stacker": _stack("loras", 50, "lora_name_{}"),
    "SeargeLoras": _stack("loras", 5, "lora_{}"),
    "ttN pipeLoader": _stack("loras", 3, "lora{}_name"),
    "CR LoRA Stack": _stack("loras", 3, "lora_name_{}", "switch_{}"),
    "CR Random LoRA Stack": _stack("loras", 3, "lora_name_{}", "switch_{}"),
    "CR LoRA List": _stack("loras", 3, "lora_name{}"),
    "CR Model List": _stack("checkpoints", 5, "ckpt_name{}"),
    "CR Model Merge Stack": _stack("checkpoints", 3, "ckpt_name{}", "switch_{}"),
    "CR Select Model": _stack("checkpoints", 5, "ckpt_name{}"),
    "CR Multi Upscale Stack": _stack("upscale_models", 3, "upscale_model_{}", "switch_{}"),
    "Lora Loader Stack (rgthree)": _stack("loras", 4, "lora_0{}"),
}

#: Values of a stacker's switch that turn its row off (Comfyroll's "On"/"Off", booleans).
SWITCH_OFF_VALUES: frozenset[object] = frozenset({"Off", "off", False})

#: Nodes whose rows are dicts, in the UI format's ``widgets_values`` list and as the values of
#: API inputs ``lora_1``, ``lora_2``... -> (folder, key of the file name, key of the on switch).
#: rgthree/rgthree-comfy py/power_lora_loader.py: rows ``{"on": bool, "lora": name,
#: "strength": float, "strengthTwo": float | None}``.
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
    # API-format names of the custom-node loaders above (used when a node type is not in LOADERS)
    "base_ckpt_name": "checkpoints",
    "refiner_ckpt_name": "checkpoints",
    "hires_ckpt_name": "checkpoints",
    "base_checkpoint": "checkpoints",
    "refiner_checkpoint": "checkpoints",
    "supir_model": "checkpoints",
    "sdxl_model": "checkpoints",
    "refiner_vae_name": "vae",
    "pixel_upscaler": "upscale_models",
    "tile_controlnet": "controlnet",
    "sparsectrl_name": "controlnet",
    "cn_lora_name": "controlnet",
    "face_restore_model": "facerestore_models",
    "boost_model": "facerestore_models",
    "swap_model": "insightface",
    "bbox_model_name": "ultralytics",
    "sam_model_name": "sams",
    "pulid_file": "pulid",
    "eva_clip_file": "text_encoders",
    "brushnet": "inpaint",
    "chatglm3_checkpoint": "LLM",
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
    (re.compile(r"^(refiner_)?lora_?\d+_name$"), "loras"),  # ttN pipeLoader: lora1_name
    (re.compile(r"^ckpt_[a-z]_name$"), "checkpoints"),  # ttN multiModelMerge: ckpt_A_name
    (re.compile(r"^upscale_model_\d+$"), "upscale_models"),  # CR Multi Upscale Stack
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
