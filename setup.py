"""Install the ``mrcnn`` (from ``lib/mrcnn``) and ``siamese_mrcnn`` packages.

CPU (tests, CI, laptops):   pip install -e ".[test]"
NVIDIA GPU on Linux:        pip install -e ".[gpu]"   (TensorFlow's CUDA build)
Other Keras backends:       pip install -e ".[jax]"   or   pip install -e ".[torch]"
                            (then KERAS_BACKEND=jax / torch, or --backend)
ONNX export and runtime:    pip install -e ".[export]"   (siamese-mrcnn export --format onnx)
"""
from setuptools import setup

packages = ["mrcnn", "siamese_mrcnn"]

setup(
    name="siamese-mrcnn",
    version="0.1.0",
    description="One-shot instance segmentation: Siamese Mask R-CNN on Keras 3 "
                "(TensorFlow, JAX or PyTorch)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    package_dir={"mrcnn": "lib/mrcnn", "siamese_mrcnn": "siamese_mrcnn"},
    packages=[
        "mrcnn",
        "mrcnn.ops",
        "mrcnn.layers",
        "siamese_mrcnn",
        # Example datasets (shapes, the procedural one-shot benchmark); importable as
        # samples.* like Matterport's, and selectable from the command line.
        "samples",
        "samples.shapes",
        "samples.procedural",
    ],
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10",
        "numpy>=2.0",
        "scipy",
        "scikit-image>=0.22",
        "Pillow",  # the image loader (mrcnn._dataset.read_image_file)
        "pycocotools>=2.0.8",
        "matplotlib>=3.8",
        "h5py",
        "tqdm",
        "tensorboard",
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        # The JAX backend (on an NVIDIA GPU install jax[cuda13] instead of jax).
        "jax": ["jax>=0.4.34"],
        # The PyTorch backend; torchvision supplies its NMS and ROI-align kernels.
        "torch": ["torch>=2.4", "torchvision>=0.19"],
        # siamese-mrcnn export --format onnx: Keras converts the TensorFlow graph with
        # tf2onnx (1.17 is the first without a protobuf 3 pin, which TF 2.21 cannot
        # use); onnxruntime runs the file (and the export test).
        "export": ["tf2onnx>=1.17", "onnx>=1.16", "onnxruntime>=1.17"],
        "test": ["pytest>=8", "hypothesis", "nbclient", "nbformat", "ipykernel"],
    },
    entry_points={"console_scripts": ["siamese-mrcnn=siamese_mrcnn.cli:main"]},
)
