"""Execute the notebooks (install_requirements.ipynb, samples/one_shot_walkthrough.ipynb)
with nbclient and check what they print and draw.

The kernel is this interpreter (``sys.executable``) through a kernel spec written to a
temporary folder: the "python3" spec that ipykernel installs into a virtualenv starts
plain ``python`` from PATH, which is not this venv unless it is activated. Notebooks
run in memory (nothing is written into the repository); parameters are injected as a
cell after the one tagged "parameters", as papermill does.
"""

import json
import os
import sys

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALL_NOTEBOOK = os.path.join(REPO, "install_requirements.ipynb")
WALKTHROUGH = os.path.join(REPO, "samples", "one_shot_walkthrough.ipynb")
KERNEL_NAME = "siamese-mrcnn-test"


@pytest.fixture
def kernel_env(monkeypatch):
    """Environment the kernel inherits: quiet TensorFlow, installing off, and the
    notebook's own matplotlib backend (the test session sets Agg)."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("SIAMESE_MRCNN_INSTALL", "0")
    monkeypatch.setenv("SIAMESE_MRCNN_GPU", "0")
    monkeypatch.delenv("MPLBACKEND", raising=False)


def _kernel_manager(folder):
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "siamese-mrcnn test kernel", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def _inject(nb, parameters):
    """Insert ``NAME = repr(value)`` lines after the cell tagged "parameters"."""
    tagged = [i for i, cell in enumerate(nb.cells)
              if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(tagged[0] + 1, cell)


def _execute(path, tmp_path, parameters=None):
    """Run the notebook at ``path`` in its own folder; returns the executed notebook
    (in memory) and all its stream output as one string."""
    nb = nbformat.read(path, as_version=4)
    if parameters:
        _inject(nb, parameters)
    client = NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=600,
                            resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()
    text = "".join(output.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream"
                   and output.name == "stdout")
    return nb, text


def _images(nb):
    return [output for cell in nb.cells if cell.cell_type == "code"
            for output in cell.outputs if "image/png" in output.get("data", {})]


def _summary(text):
    lines = [line for line in text.splitlines() if line.startswith("walkthrough summary: ")]
    assert len(lines) == 1, text
    return json.loads(lines[0][len("walkthrough summary: "):])


@pytest.mark.parametrize("path", [INSTALL_NOTEBOOK, WALKTHROUGH])
def test_notebooks_are_saved_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert nb.metadata.kernelspec.name == "python3"


def test_install_notebook_checks_the_stack_without_installing(tmp_path, kernel_env):
    import keras
    import numpy as np
    import tensorflow as tf

    nb, text = _execute(INSTALL_NOTEBOOK, tmp_path)
    assert "INSTALL is False: nothing installed" in text
    assert "Successfully installed" not in text and "Obtaining file" not in text
    names = ("python", "tensorflow", "keras", "numpy", "scipy", "skimage", "pycocotools",
             "matplotlib", "h5py")
    versions = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in names:
            versions.setdefault(words[0], words[1])  # the version table comes first
    assert set(versions) == set(names)
    assert versions["keras"] == keras.__version__ and versions["keras"].startswith("3.")
    assert versions["numpy"] == np.__version__ and versions["numpy"].startswith("2.")
    assert versions["tensorflow"] == tf.__version__
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert f"keras {keras.__version__} on the tensorflow backend" in text
    gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        assert f"GPUs visible to TensorFlow: {gpus}" in text
    else:
        assert "GPUs visible to TensorFlow: none" in text and 'pip install -e ".[gpu]"' in text
    assert "imports: ok (MaskRCNN, SiameseMaskRCNN)" in text
    imgaug_lines = [line for line in text.splitlines() if line.startswith("imgaug")]
    assert len(imgaug_lines) == 1
    assert ("not available" in imgaug_lines[0]) != imgaug_lines[0].endswith(": available")
    assert text.rstrip().endswith("stack check passed")


def test_walkthrough_without_checkpoint_runs_on_random_weights(tmp_path, kernel_env):
    empty = tmp_path / "no_runs"
    nb, text = _execute(WALKTHROUGH, tmp_path, {"DEMO_DIR": str(empty), "SHIPPED": None})
    assert "No demo checkpoint" in text and "RANDOM INITIALISATION" in text
    summary = _summary(text)
    assert summary["weights"] is None
    # DemoConfig: 128-pixel queries, 64-pixel references.
    assert summary["reference_shape"] == [64, 64, 3]
    assert summary["reference_from_box_equal"] is True
    assert summary["detect_keys"] == ["class_ids", "masks", "rois", "scores"]
    n = summary["detections"]
    assert 0 <= n <= 12 and summary["rois_shape"] == [n, 4]
    assert summary["masks_shape"] == [128, 128, n]
    assert len(summary["multi_categories"]) == len(summary["multi_detections"]) >= 1
    assert summary["class_id"] in summary["multi_categories"]
    assert summary["multi_matches_detect"] is True
    assert len(_images(nb)) == 2  # reference | ground truth | detections, and per category


def test_walkthrough_falls_back_to_the_shipped_reference_weights(tmp_path, kernel_env):
    shipped = os.path.join(REPO, "checkpoints", "demo_reference", "siamese_mrcnn_reference.h5")
    assert os.path.isfile(shipped) and os.path.isfile(
        os.path.join(os.path.dirname(shipped), "config.json"))
    nb, text = _execute(WALKTHROUGH, tmp_path, {"DEMO_DIR": str(tmp_path / "no_runs")})
    assert "No demo checkpoint" in text and "RANDOM INITIALISATION" not in text
    assert "Using the shipped reference-run weights instead" in text
    summary = _summary(text)
    assert os.path.abspath(os.path.join(REPO, "samples", summary["weights"])) == shipped
    assert summary["detections"] >= 1 and summary["multi_matches_detect"] is True
    assert len(_images(nb)) == 2


@pytest.fixture
def quick_demo_dir(tmp_path):
    """A demo output folder with one checkpoint of the --quick configuration (random
    weights), laid out as the demo writes it."""
    from siamese_mrcnn.config import QuickConfig
    from siamese_mrcnn.model import SiameseMaskRCNN

    config = QuickConfig()
    run_dir = tmp_path / "demo" / f"{config.NAME.lower()}20240101T0000"
    run_dir.mkdir(parents=True)
    checkpoint = run_dir / "siamese_mrcnn_0003.h5"
    SiameseMaskRCNN("inference", config, str(tmp_path / "demo")).save_weights(str(checkpoint))
    return tmp_path / "demo", checkpoint


def test_walkthrough_loads_the_last_demo_checkpoint(tmp_path, kernel_env, quick_demo_dir):
    demo_dir, checkpoint = quick_demo_dir
    nb, text = _execute(WALKTHROUGH, tmp_path,
                        {"DEMO_DIR": str(demo_dir), "QUICK": True})
    assert f"loaded weights from {checkpoint}" in text
    assert "RANDOM INITIALISATION" not in text
    summary = _summary(text)
    assert summary["weights"] == str(checkpoint)
    assert summary["reference_shape"] == [32, 32, 3]      # QuickConfig.TARGET_MAX_DIM
    assert summary["masks_shape"][:2] == [64, 64]
    assert summary["multi_matches_detect"] is True
    assert len(_images(nb)) == 2
    # Loading a checkpoint only reads: the demo folder is unchanged.
    assert sorted(os.listdir(demo_dir)) == [checkpoint.parent.name]
    assert os.listdir(checkpoint.parent) == [checkpoint.name]
