"""Times GET /api/storage/ on a model root of 20,000 files in 200 folders, warm.

    .venv/bin/python bench/storage.py [--files 20000] [--folders 200] [--presets 1000] [--runs 7]

The files are sparse (each claims up to 2 GB and takes no disk space), with a .part in each
folder; the catalogue's presets list three files each, two of their own (the second one missing
for one preset in three) and one shared with the next preset, so the answer has presets
installed and not, shared files, unmanaged files, .part files and a pair of duplicates.
Warm: the file system's caches hold the tree (the first request is timed apart, as "first").
Runs on a throw-away SQLite database and model root. Goal: warm < 500 ms (the median).
"""

import argparse
import os
import shutil
import statistics
import sys

from throwaway import setup_django, timed

SHA = "ab" * 32


def build_tree(root, files, folders):
    """`files` sparse files spread over `folders` folders (ComfyUI's own names first), a .part
    per folder; returns the paths written, relative to `root`."""
    from storage import DEFAULT_FOLDER_DIRS

    names = list(DEFAULT_FOLDER_DIRS)[:folders] + [
        f"custom_{n}" for n in range(max(0, folders - len(DEFAULT_FOLDER_DIRS)))
    ]
    written = []
    for n in range(files):
        path = f"{names[n % folders]}/model_{n:05d}.safetensors"
        written.append(path)
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            fh.truncate(1_000_000 + (n * 7919) % 2_000_000_000)
    for name in names:
        (root / name / "downloading.safetensors.part").write_bytes(b"x" * 100)
    os.truncate(root / written[3], (root / written[2]).stat().st_size)
    return written


def build_catalogue(written, presets):
    """`presets` presets of three files (see the module's docstring); two files of the same
    size get the same sha256 in the catalogue."""
    from presets.models import Category, Preset, PresetFile

    category = Category.objects.create(name="Bench", type="image")
    rows = []
    for n in range(presets):
        preset = Preset(id=f"BENCH_{n:05d}", name=f"Bench preset {n}", category=category, type="image")
        rows.append(preset)
    Preset.objects.bulk_create(rows)
    files = []
    for n, preset in enumerate(rows):
        first = written[2 * n]
        second = written[2 * n + 1] if n % 3 else f"loras/missing_{n}.safetensors"
        shared = written[2 * n + 2]  # also the next preset's first file
        for position, path in enumerate((first, second, shared)):
            files.append(
                PresetFile(preset=preset, position=position, path=path, url="https://example.org/m", size="1GB")
            )
    PresetFile.objects.bulk_create(files)
    # Two files of the same size and catalogue sha256: one duplicate pair for the answer to find.
    PresetFile.objects.filter(path__in=written[2:4]).update(sha256=SHA)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--folders", type=int, default=200)
    parser.add_argument("--presets", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    workdir = setup_django("presetsite-storage-bench-")
    root = workdir / "models"
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from presets.models import model_roots

    settings.MODEL_BASE_PATH = root
    written = build_tree(root, args.files, args.folders)
    build_catalogue(written, args.presets)
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.create_user("bench", is_staff=True))

    first_times, response = timed(lambda: client.get("/api/storage/"), 1)
    assert response.status_code == 200, response.content[:500]
    warm_times, response = timed(lambda: client.get("/api/storage/"), args.runs)
    report = response.json()
    walk_times, entries = timed(lambda: model_roots().walk(), args.runs)
    assert len(entries) == args.files + len(report["folders"]) and len(report["duplicates"]) == 1

    rows = [
        ("GET /api/storage/, first", first_times, None, f"{len(response.content) / 1024:.0f} KiB JSON"),
        ("GET /api/storage/, warm", warm_times, 0.5, ""),
        ("  of which the walk (ModelRoots.walk)", walk_times, None, f"{len(entries)} entries"),
    ]
    print(
        f"\n{args.files} files in {len(report['folders'])} folders, {args.presets} presets "
        f"({len(report['presets'])} with files on disk), {len(report['unmanaged'])} unmanaged, "
        f"{len(report['partials'])} .part, {len(report['duplicates'])} duplicate group(s); SQLite, {args.runs} runs\n"
    )
    print(f"{'operation':<40}{'median':>10}{'max':>10}{'goal':>9}  {'ok':<4}note")
    for name, times, goal, note in rows:
        median, worst = statistics.median(times), max(times)
        verdict = "" if goal is None else ("yes" if median < goal else "NO")
        goal_text = f"{goal * 1000:>7.0f}ms" if goal else f"{'':>9}"
        print(f"{name:<40}{median * 1000:>8.0f}ms{worst * 1000:>8.0f}ms{goal_text}  {verdict:<4}{note}")
    shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
