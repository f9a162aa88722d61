"""Times a scan of 1,000 workflow files (generated from the test fixtures), cold and warm.

    .venv/bin/python bench/scan.py [--files 1000] [--runs 5]

Cold: every file is new and parsed. Warm: nothing changed, so nothing is parsed; the scan only
stats the files and reads the stored rows. Runs on a throw-away SQLite database.
Goals: cold < 3 s, warm < 0.3 s.
"""

import argparse
import json
import shutil
import statistics
import time

from throwaway import ROOT, setup_django

FIXTURES = ROOT / "tests" / "fixtures" / "workflows"
SOURCES = ["ui_sdxl_basic.json", "ui_flux_subgraph.json", "api_wan_video.json", "api_misc_loaders.json"]


def generate(folder, count):
    """`count` workflow files cycling through the fixtures, each with its own model names."""
    sources = [json.loads((FIXTURES / name).read_text()) for name in SOURCES]
    for n in range(count):
        text = json.dumps(sources[n % len(sources)]).replace(".safetensors", f"_{n}.safetensors")
        sub = folder / f"group{n % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"workflow_{n:04d}.json").write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    workdir = setup_django("presetsite-scan-bench-")
    from templates_scan import library
    from templates_scan.models import ModelReference, Template

    folder = workdir / "workflows"
    generate(folder, args.files)

    cold = []
    for _ in range(args.runs):
        Template.objects.all().delete()
        start = time.perf_counter()
        counts = library.scan_directories([folder])
        cold.append(time.perf_counter() - start)
        assert counts["parsed"] == args.files, counts
    warm = []
    for _ in range(args.runs):
        start = time.perf_counter()
        counts = library.scan_directories([folder])
        warm.append(time.perf_counter() - start)
        assert counts["parsed"] == 0, counts
    start = time.perf_counter()
    reports = library.all_reports()
    report_time = time.perf_counter() - start
    assert len(reports) == args.files

    print(f"\n{args.files} workflows ({ModelReference.objects.count()} model references), SQLite, {args.runs} runs\n")
    print(f"{'operation':<36}{'median':>10}{'max':>10}{'goal':>9}  ok")
    for name, times, goal in (("scan, cold (all parsed)", cold, 3.0), ("scan, warm (nothing changed)", warm, 0.3)):
        median, worst = statistics.median(times), max(times)
        verdict = "yes" if worst < goal else "NO"
        print(f"{name:<36}{median * 1000:>8.0f}ms{worst * 1000:>8.0f}ms{goal * 1000:>7.0f}ms  {verdict}")
    print(f"{'reports for all (GET templates)':<36}{report_time * 1000:>8.0f}ms")
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
