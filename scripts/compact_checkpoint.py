#!/usr/bin/env python
"""Write a float16 copy of a checkpoint (half the size) with its run's config.json.

    python scripts/compact_checkpoint.py CHECKPOINT OUT_DIR [--dtype float16] [--name NAME]

Writes ``OUT_DIR/NAME`` (default: the checkpoint's file name) with every floating
weight stored as ``--dtype`` (:func:`mrcnn.weights.convert_weight_file`) and copies
the ``config.json`` found beside the checkpoint, so ``scripts/demo.py --weights
OUT_DIR/NAME`` rebuilds the same model and evaluates it. This is how the demo's
reference weights in ``checkpoints/`` were made. Loading casts the weights back to
float32; float16 keeps about 3 significant digits. Needs the project installed
(``pip install -e .``).
"""

import argparse
import os
import shutil


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/compact_checkpoint.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a .h5 checkpoint written by training")
    parser.add_argument("out_dir", help="directory for the copy and config.json")
    parser.add_argument("--dtype", default="float16", help="floating type (default float16)")
    parser.add_argument("--name", default=None,
                        help="file name of the copy (default: the checkpoint's)")
    args = parser.parse_args(argv)
    from mrcnn.config import RUN_CONFIG_FILE, run_config_path
    from mrcnn.weights import convert_weight_file

    if not os.path.isfile(args.checkpoint):
        parser.error(f"no such checkpoint file: {args.checkpoint}")
    config = run_config_path(args.checkpoint)
    if config is None:
        parser.error(f"{args.checkpoint}: no config.json beside it; the copy could not be "
                     f"rebuilt into the same model")
    os.makedirs(args.out_dir, exist_ok=True)
    target = os.path.join(args.out_dir, args.name or os.path.basename(args.checkpoint))
    before, after = convert_weight_file(args.checkpoint, target, args.dtype)
    shutil.copyfile(config, os.path.join(args.out_dir, RUN_CONFIG_FILE))
    print(f"{target}: {after / 1e6:.1f} MB ({args.dtype}; {before / 1e6:.1f} MB before)")
    return target


if __name__ == "__main__":
    main()
