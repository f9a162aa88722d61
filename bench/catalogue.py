"""Times a refresh of a generated 2,000-preset catalogue and GET /api/presets/ over it.

    .venv/bin/python bench/catalogue.py [--presets 2000] [--runs 5]

Runs on a throw-away SQLite database (the embedded default) in a temp dir.
Goals: refresh < 2 s, API response < 300 ms.
"""

import argparse
import shutil
import statistics
import sys

from throwaway import setup_django, timed


def generated_catalogue(count, variant=0):
    """A catalogue shaped like upstream's: 3 categories, 3-4 files per preset, shared text encoders."""
    import yaml

    categories = {
        "Video Generation": {"description": "Video models", "type": "video"},
        "Image Generation": {"description": "Image models", "type": "image"},
        "Audio Generation": {"description": "Audio models", "type": "audio"},
    }
    presets = {}
    for n in range(count):
        category = list(categories)[n % 3]
        files = [
            {
                "path": f"checkpoints/model_{n}_{variant if n % 10 == 0 else 0}.safetensors",
                "url": f"https://huggingface.co/org/repo{n}/resolve/main/model.safetensors",
                "size": f"{1 + n % 20}.5GB",
            },
            {
                "path": f"text_encoders/t5_{n % 7}.safetensors",
                "url": f"https://huggingface.co/org/t5/resolve/main/t5_{n % 7}.safetensors",
                "size": "4.9GB",
            },
            {
                "path": f"vae/vae_{n % 5}.safetensors",
                "url": f"https://huggingface.co/org/vae/resolve/main/vae_{n % 5}.safetensors",
                "size": "335MB",
            },
        ]
        if n % 4 == 0:
            files.append(
                {
                    "path": f"loras/lora_{n}.safetensors",
                    "url": f"https://civitai.com/api/download/models/{n}",
                    "size": "150MB",
                    "optional": True,
                }
            )
        presets[f"PRESET_{n:05d}"] = {
            "name": f"Generated preset {n}",
            "category": category,
            "type": categories[category]["type"],
            "description": f"A generated preset number {n} for the benchmark",
            "download_size": f"{7 + n % 20}.2GB",
            "files": files,
            "use_case": "benchmarking the catalogue",
            "tags": ["bench", f"group-{n % 13}"],
        }
    return yaml.safe_dump(
        {"metadata": {"version": f"9.{variant}.0"}, "categories": categories, "presets": presets}, sort_keys=False
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    workdir = setup_django("presetsite-catalogue-bench-")
    from django.test import Client

    from presets.models import Preset
    from presets.refresh import refresh_from_file

    files = []
    for variant in range(args.runs + 1):
        path = workdir / f"presets-{variant}.yaml"
        path.write_text(generated_catalogue(args.presets, variant))
        files.append(path)

    first_times, first = timed(lambda: refresh_from_file(files[0]), 1)
    assert len(first.added) == args.presets
    later = iter(files[1:])
    change_times, changed = timed(lambda: refresh_from_file(next(later)), args.runs)
    same_times, same = timed(lambda: refresh_from_file(files[-1]), args.runs)
    assert len(same.unchanged) == args.presets and Preset.objects.count() == args.presets

    client = Client(HTTP_HOST="localhost")
    api_times, response = timed(lambda: client.get("/api/presets/"), args.runs)
    assert response.json()["total"] == args.presets
    size_kib = len(response.content) / 1024

    rows = [
        ("refresh: first load", first_times, 2.0, f"{len(first.added)} added"),
        ("refresh: 10% of presets changed", change_times, 2.0, f"{len(changed.changed)} changed"),
        ("refresh: nothing changed", same_times, 2.0, f"{len(same.unchanged)} unchanged"),
        ("GET /api/presets/", api_times, 0.3, f"{size_kib:.0f} KiB JSON"),
    ]
    print(f"\n{args.presets} presets, SQLite, {args.runs} runs (median / max)\n")
    print(f"{'operation':<34}{'median':>10}{'max':>10}{'goal':>9}  {'ok':<4}note")
    for name, times, goal, note in rows:
        median, worst = statistics.median(times), max(times)
        verdict = "yes" if worst < goal else "NO"
        print(f"{name:<34}{median * 1000:>8.0f}ms{worst * 1000:>8.0f}ms{goal * 1000:>7.0f}ms  {verdict:<4}{note}")
    shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
