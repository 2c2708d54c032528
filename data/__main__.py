"""python -m data [--data-dir DIR]: fetch and verify MNIST ahead of time (for example before going offline)."""
import argparse
import sys

from data.mnist import DATA_DIR_ENV, DEFAULT_DATA_DIR, DataError, ensure_mnist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("--data-dir", default=None,
                        help=f"folder that holds MNIST/raw (default: ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})")
    args = parser.parse_args(argv)
    try:
        raw = ensure_mnist(args.data_dir)
    except DataError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"MNIST is ready in {raw.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
