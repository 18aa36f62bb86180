"""Memory and cost of the consumer runtime's dedup window (tapio_jetstream.dedup.DedupWindow).

Fills windows of several sizes with event ids shaped like the collectors' (26-character ULIDs),
through `add()` in messages of 272 ids (the mean EventBatch of the correlator benchmark), and
measures with tracemalloc the memory the window holds once full, then the time of `fresh()` +
`add()` per id on fresh messages (the path every message takes).
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

from tapio_jetstream.dedup import DedupWindow

BATCH = 272
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_like(n: int) -> str:
    digits = []
    for _ in range(26):
        n, r = divmod(n, 32)
        digits.append(ALPHABET[r])
    return "01J" + "".join(reversed(digits))[3:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="window sizes (keys), comma-separated"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="time spent measuring fresh()+add() per size"
    )
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        tracemalloc.start()
        window = DedupWindow(size)
        before = tracemalloc.get_traced_memory()[0]
        for i in range(0, size * 2, BATCH):  # each id a string of its own, as protobuf hands them out
            window.add([ulid_like(j * 7919 + os.getpid()) for j in range(i, i + BATCH)])
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        per_key = held / max(1, len(window))
        n, spent, k = 0, 0.0, size * 2
        while spent < args.seconds:
            batch = [ulid_like(j) for j in range(k, k + BATCH)]
            k += BATCH
            started = time.process_time()  # CPU time: a shared machine does not inflate it
            window.fresh(batch)
            window.add(batch)
            spent += time.process_time() - started
            n += BATCH
        ns = spent / n * 1e9
        print(f"window {size:>9,} keys: holds {len(window):>9,} keys in {held / 2**20:7.1f} MiB "
              f"({per_key:.0f} bytes/key, strings included); fresh()+add() {ns:.0f} ns CPU per id")  # fmt: skip
        results.append((size, held, per_key, ns))
    size, held, per_key, ns = next((r for r in results if r[0] == 100_000), results[-1])
    print(f"window_keys={size} window_mib={held / 2**20:.1f} bytes_per_key={per_key:.0f} ns_per_id={ns:.0f}")


if __name__ == "__main__":
    main()
