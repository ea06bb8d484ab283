"""siamese_mrcnn.benchmark (run by scripts/benchmark.py): argument checks, the memory
probe, the timing loop, and one in-process smoke run (64x64, ResNet-18, tiny heads) of
the Mask R-CNN rows."""

import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    from siamese_mrcnn import benchmark
    return benchmark


def test_the_script_runs_the_package_benchmark():
    # A bad --size is refused by the package's parser, through the script's entry point.
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "benchmark.py"),
                           "--size", "100"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--size must be a positive multiple of 64, got 100" in done.stderr


def test_parse_args_defaults_and_errors(bench):
    args = bench.parse_args([])
    assert (args.size, args.repeats, args.warmup, args.only, args.backbone,
            args.proposals, args.reference_size) == (1024, 5, 1, "all", "resnet50", 1000, 192)
    assert args.backends == ["tensorflow"]
    assert bench.parse_args(["--backend", "jax,torchvision"]).backends == ["jax", "torchvision"]
    for bad in (["--size", "100"], ["--reference-size", "100"], ["--repeats", "0"],
                ["--only", "yolo"], ["--backbone", "vgg"], ["--backend", "mxnet"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_peak_memory_sees_an_allocation(bench):
    memory = bench.PeakMemory()
    if memory.mode != "call":
        pytest.skip("the kernel does not let this process reset its peak RSS")
    size_mib = 200

    def allocate():
        block = np.ones(size_mib * 1024 * 1024 // 8)  # touched pages count in RSS
        return float(block[-1])

    _, peak, rise = memory.measure(allocate)
    assert rise >= 0.9 * size_mib
    # After the block is freed, a fresh window does not remember it.
    _, _, rise_small = memory.measure(lambda: None)
    assert rise_small < 0.5 * size_mib


def test_time_row_interleaves_floor_and_reports_median(bench):
    calls = []
    durations = iter([0.0, 0.05, 0.01, 0.03])  # warm-up, then three timed calls

    def fn():
        calls.append("row")
        time.sleep(next(durations))
        return len(calls)

    def floor():
        calls.append("floor")
        time.sleep(0.01)

    row = bench.time_row(fn, floor, repeats=3, warmup=1, memory=bench.PeakMemory())
    assert calls == ["row", "floor", "row", "floor", "row", "floor", "row"]
    assert len(row["times"]) == len(row["floor_times"]) == 3
    assert row["min_s"] == min(row["times"]) and row["min_s"] >= 0.01
    assert row["median_s"] == sorted(row["times"])[1]
    assert 0.03 <= row["median_s"] < 0.05
    assert row["ratio"] == pytest.approx(row["median_s"] / row["floor_median_s"])
    assert len(row["cpu_times"]) == len(row["floor_cpu_times"]) == 3
    assert all(t >= 0 for t in row["cpu_times"])
    assert row["result"] == 7  # the last call's return value


def test_smoke_run_mrcnn_rows(bench, tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = bench.main(["--size", "64", "--repeats", "1", "--warmup", "1", "--only", "mrcnn",
                         "--backbone", "resnet18", "--tiny", "--json", str(out)])
    names = [r["name"] for r in report["rows"]]
    assert names == ["resnet18 forward (floor)", "MaskRCNN detect (mold+graph+unmold)",
                     "MaskRCNN graph only", "MaskRCNN train step (batch 1)"]
    for row in report["rows"]:
        assert row["median_s"] > 0 and row["min_s"] > 0 and row["peak_mib"] > 0
    for row in report["rows"][1:]:
        assert row["ratio"] > 0 and row["cpu_ratio"] > 0 and len(row["floor_times"]) == 1
    # Every detection slot is filled and gets a mask.
    detect = report["rows"][1]
    expected = bench.TINY_OVERRIDES["DETECTION_MAX_INSTANCES"]
    assert detect["note"] == f"{expected} detections, {expected} masks"
    assert np.isfinite(float(report["rows"][3]["note"].split()[1]))
    table = capsys.readouterr().out
    for name in names:
        assert name in table
    assert "machine (tensorflow): " in table and "cores" in table
    assert out.exists() and '"rows"' in out.read_text()
    # Multiply-adds: every row of the graph counts more than the bare backbone.
    floor, detect, graph, train = report["rows"]
    assert floor["macs"] > 0 and detect["macs"] == graph["macs"] > floor["macs"]
    assert train["macs"] > 2 * floor["macs"]
    assert floor["mac_bound_ratio"] == pytest.approx(1.0)
    assert all(r["mac_bound_ratio"] > 0 for r in report["rows"])


def test_multiply_adds_by_hand(bench):
    import keras
    inputs = {"a": keras.Input((10, 10, 4), name="a"), "b": keras.Input((3, 7), name="b"),
              "c": keras.Input((4, 4, 3), name="c")}
    outputs = [keras.layers.Conv2D(8, 3, padding="same")(inputs["a"]),
               keras.layers.Conv2D(8, 3, strides=2)(inputs["a"]),
               keras.layers.Dense(5)(inputs["b"]),
               keras.layers.Conv2DTranspose(6, 2, strides=2)(inputs["c"])]
    model = keras.Model(inputs, outputs)
    arrays = {"a": np.zeros((2, 10, 10, 4), np.float32), "b": np.zeros((2, 3, 7), np.float32),
              "c": np.zeros((2, 4, 4, 3), np.float32)}
    # per image: 10*10 cells x 3*3*4 x 8; 4*4 cells (valid, stride 2) x 3*3*4 x 8;
    # 3 rows x 7 x 5; 4*4 input cells x 2*2 x 3 x 6
    expected = 2 * (100 * 36 * 8 + 16 * 36 * 8 + 3 * 7 * 5 + 16 * 4 * 3 * 6)
    assert bench.multiply_adds(model, arrays) == expected
    # A nested model called twice counts twice.
    inner = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Conv2D(3, 1)])
    x = keras.Input((5, 5, 2))
    twice = keras.Model(x, [inner(x), inner(x)])
    assert bench.multiply_adds(twice, np.zeros((1, 5, 5, 2), np.float32)) == 2 * 25 * 2 * 3


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                    reason="torchvision is not installed")
def test_torchvision_rows_in_their_own_process(bench, capsys):
    # Not imported here: torch beside TensorFlow in one process can crash.
    report = bench.main(["--size", "64", "--repeats", "1", "--warmup", "1",
                         "--backend", "torchvision", "--tiny"])
    names = [r["name"] for r in report["rows"]]
    assert names == ["torchvision resnet50 forward (floor)",
                     "torchvision maskrcnn_resnet50_fpn detect",
                     "torchvision train step (batch 1)"]
    floor, detect, train = report["rows"]
    # torchvision's bare ResNet-50 at 64x64: (64/224)^2 of its 4.09 GMAC at 224.
    assert floor["macs"] == pytest.approx(4.09e9 * (64 / 224) ** 2, rel=0.05)
    assert detect["macs"] > floor["macs"] and train["macs"] > 2 * floor["macs"]
    assert detect["note"].endswith("masks") and "loss" in train["note"]
    assert report["machines"][0]["backend"] == "torchvision"
