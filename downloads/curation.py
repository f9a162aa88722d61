"""Add a preset from URLs, in the admin: paste links, check what each one proposes, confirm.

Step 1 takes the preset's required fields and the URLs; step 2 asks every URL's source (the
prober, downloads.probe, as a download would: same redirects, tokens and allowed hosts) and
proposes one editable row per file: its path (a model folder guessed from the names, and the
file name), exact size and sha256; nothing is saved until step 3, which saves the preset as
curated locally through the same model validation as the admin's own forms.
"""

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from downloads.probe import probe_many
from downloads.sources import host_matches, host_of
from downloads.worker import engine_options
from presets.catalogue import TYPE_RE, unsafe_url_reason
from presets.models import Preset, PresetFile
from presets.sizes import human_size

MAX_URLS = 50
PROBE_DEADLINE = 20.0

# Where ComfyUI wants a model, guessed from words in its names; the first rule that matches wins,
# so the narrow ones (a CLIP vision encoder, a text encoder) come before the broad ones.
FOLDER_RULES = (
    (r"clip_vision|image_encoder|siglip|llava\w*vision", "clip_vision"),
    (r"t5xxl|umt5|clip_[lg]\b|text_encoder|llava|qwen_?2\.5_vl|gemma|byt5", "text_encoders"),
    (r"(^|[^a-z0-9])(vae|ae)([^a-z0-9]|$)|taesd", "vae"),
    (r"lora|lycoris|locon", "loras"),
    (r"controlnet|control[_-]|t2i[_-]?adapter", "controlnet"),
    (r"(^|[^a-z0-9])[248]x[_-]|esrgan|upscal|swinir", "upscale_models"),
    (r"wav2vec|audio_encoder|whisper", "audio_encoders"),
    (
        r"\.gguf$|transformer|diffusion_model|unet|flux|wan_?2|hunyuan_video|mochi|cosmos|hidream|ltxv",
        "diffusion_models",
    ),
)
DEFAULT_FOLDER = "checkpoints"

# Folder names that Hugging Face repos use for one kind of model (Comfy-Org's `split_files/vae/`,
# diffusers' `text_encoder/`): a file inside one is that kind, whatever its own name says.
REPO_FOLDERS = {
    "checkpoints": "checkpoints",
    "vae": "vae",
    "loras": "loras",
    "lora": "loras",
    "text_encoders": "text_encoders",
    "text_encoder": "text_encoders",
    "clip": "text_encoders",
    "diffusion_models": "diffusion_models",
    "transformer": "diffusion_models",
    "transformers": "diffusion_models",
    "unet": "diffusion_models",
    "clip_vision": "clip_vision",
    "image_encoder": "clip_vision",
    "controlnet": "controlnet",
    "upscale_models": "upscale_models",
    "audio_encoders": "audio_encoders",
}


def guess_folder(file_name, repo="", folder=""):
    """The model folder for a file: a kind-named folder of the repo it is in (Comfy-Org's
    ``split_files/vae``), else the words of its name, else of the repo's name, else checkpoints."""
    for part in reversed(folder.lower().split("/")):
        if part in REPO_FOLDERS:
            return REPO_FOLDERS[part]
    for text in (file_name.lower(), repo.lower()):
        for pattern, guessed in FOLDER_RULES:
            if re.search(pattern, text):
                return guessed
    return DEFAULT_FOLDER


def _hub_segments(url, hub_hosts):
    """The path of a Hugging Face file URL cut in two: what comes before the org ("datasets", or
    nothing) and [org, repo, "resolve" or "blob", revision, *folders, name]; None for other URLs."""
    if not host_matches(host_of(url), hub_hosts):
        return None
    segments = urlsplit(url).path.split("/")[1:]
    before = segments[:1] if segments[:1] in (["datasets"], ["spaces"]) else []
    segments = segments[len(before) :]
    if len(segments) < 5 or segments[2] not in ("resolve", "blob") or "" in segments:
        return None
    return before, segments


def hub_parts(url, hub_hosts):
    """(repo, folder inside it) of a Hugging Face file URL, e.g. ("Comfy-Org/Wan", "split_files/vae"),
    or ("", "") for another URL."""
    found = _hub_segments(url, hub_hosts)
    if not found:
        return "", ""
    segments = [unquote(segment) for segment in found[1]]
    return "/".join(segments[:2]), "/".join(segments[4:-1])


def resolve_url(url, hub_hosts):
    """A Hugging Face `blob` link (the file's web page) turned into its `resolve` link (the file)."""
    found = _hub_segments(url, hub_hosts)
    if not found or found[1][2] != "blob":
        return url
    before, segments = found
    segments[2] = "resolve"
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + "/".join(before + segments)))


def proposed_path(result, url, hub_hosts):
    """folder/name for a probed file: the name its source gave (Content-Disposition, else the URL's
    last part), in the folder guessed from it and from the Hugging Face repo."""
    name = result.filename or ""
    return f"{guess_folder(name, *hub_parts(url, hub_hosts))}/{name}"


class StartForm(forms.ModelForm):
    """The preset's required fields: checked at step 1 already, so a taken id stops nothing late."""

    class Meta:
        model = Preset
        fields = ("id", "name", "category", "type")

    def clean_type(self):
        value = self.cleaned_data["type"]
        if not TYPE_RE.match(value):
            raise ValidationError("A short lowercase word like 'image' (the catalogue's rule).")
        return value


class UrlsForm(forms.Form):
    urls = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 100}),
        help_text="One per line: Hugging Face resolve or blob links, or any http(s) link.",
    )

    def clean_urls(self):
        urls = list(dict.fromkeys(line.strip() for line in self.cleaned_data["urls"].splitlines() if line.strip()))
        if len(urls) > MAX_URLS:
            raise ValidationError(f"At most {MAX_URLS} URLs at a time.")
        return urls


class FileRowForm(forms.ModelForm):
    """One proposed file. `problem` says why its URL failed: such a row can only be skipped."""

    problem = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = PresetFile
        fields = ("url", "path", "exact_bytes", "sha256")
        widgets = {
            "url": forms.HiddenInput,
            "path": forms.TextInput(attrs={"size": 50}),
            "exact_bytes": forms.NumberInput(attrs={"style": "width: 10em"}),
            "sha256": forms.TextInput(attrs={"size": 30}),
        }

    def clean(self):
        if self.cleaned_data.get("problem"):
            raise ValidationError(f"This URL failed ({self.cleaned_data['problem']}): skip it, or start again.")
        return super().clean()


class BaseFileRows(forms.BaseFormSet):
    def clean(self):
        kept = [form for form in self.forms if not self._should_delete_form(form)]
        if not kept:
            raise ValidationError("Nothing to add: every row is skipped.")
        paths = [form.cleaned_data.get("path") for form in kept]
        twice = sorted({path for path in paths if path and paths.count(path) > 1})
        if twice:
            raise ValidationError(f"The same path twice: {', '.join(twice)}.")


FileRows = forms.formset_factory(FileRowForm, formset=BaseFileRows, extra=0, can_delete=True, max_num=MAX_URLS)


def propose(urls):
    """One row of initial values per URL, in order: what its source says, or why it failed."""
    options = engine_options()
    hub_hosts = options.huggingface_hosts
    urls = list(dict.fromkeys(resolve_url(url, hub_hosts) for url in urls))  # a blob and its resolve link: once
    safe = [url for url in urls if not unsafe_url_reason(url)]
    results = dict(zip(safe, probe_many(safe, options=options, deadline=PROBE_DEADLINE), strict=True))
    rows = []
    for url in urls:
        problem = unsafe_url_reason(url)
        if problem:
            rows.append({"url": url, "path": "", "problem": f"URL {problem}", "DELETE": True})
            continue
        result = results[url]
        if result.status != "ok":
            rows.append({"url": url, "path": "", "problem": result.message, "DELETE": True})
            continue
        rows.append(
            {
                "url": url,
                "path": proposed_path(result, url, hub_hosts),
                "exact_bytes": result.size,
                "sha256": result.sha256 or "",
            }
        )
    return rows


@transaction.atomic
def save_preset(start, rows):
    """The preset, curated locally, with its kept rows as files; sizes written as upstream does."""
    preset = start.save(commit=False)
    preset.source = Preset.LOCAL
    files = [form.save(commit=False) for form in rows.forms if form not in rows.deleted_forms]
    if all(file.exact_bytes for file in files):
        preset.download_size = _size_text(sum(file.exact_bytes for file in files))
    preset.save()
    for position, file in enumerate(files):
        file.preset, file.position, file.size = preset, position, _size_text(file.exact_bytes)
        file.save()
    return preset


def _size_text(num_bytes):
    return human_size(num_bytes).replace(" ", "") if num_bytes else ""


def add_from_urls(request):
    """The three steps in one page: GET (step 1), POST step=propose (step 2), POST step=save (3)."""
    if not request.user.has_perm("presets.add_preset"):
        return HttpResponseForbidden("Not allowed")
    step = request.POST.get("step") if request.method == "POST" else None
    start = StartForm(request.POST or None, prefix="preset")
    if step == "save":
        rows = FileRows(request.POST, prefix="files")
        if start.is_valid() and rows.is_valid():
            preset = save_preset(start, rows)
            messages.success(request, f"Preset {preset.id} added with {preset.files.count()} file(s).")
            return HttpResponseRedirect(reverse("admin:presets_preset_change", args=[preset.pk]))
        return _page(request, "proposal", start=start, rows=rows)
    urls = UrlsForm(request.POST or None)
    if step == "propose" and start.is_valid() and urls.is_valid():
        rows = FileRows(initial=propose(urls.cleaned_data["urls"]), prefix="files")
        return _page(request, "proposal", start=start, rows=rows)
    return _page(request, "start", start=start, urls=urls)


def _page(request, step, **context):
    return render(
        request,
        "downloads/add_from_urls.html",
        {
            **admin.site.each_context(request),
            "title": "Add preset from URLs",
            "opts": Preset._meta,
            "step": step,
            **context,
        },
    )
