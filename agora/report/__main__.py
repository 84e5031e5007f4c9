"""``python -m agora.report screenshot HTML PNG``: the first screenful of a report, as a PNG.

`make docs-images` uses it for docs/report.png, from the report `make run`'s data gives.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agora.report.pdf import screenshot


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "screenshot":
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    print(screenshot(Path(argv[1]), Path(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
