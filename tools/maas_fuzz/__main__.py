"""``python -m maas_fuzz --target HOST:PORT [--target ...] [--examples N]``: fuzz every RPC of running servers
(reflection finds them) and print, per method, the requests sent, the status codes and the faults. Exit status 1
when any fault was seen."""

from __future__ import annotations

import argparse
import sys

import grpc

from maas_fuzz.core import discover, fuzz


def main() -> None:
    ap = argparse.ArgumentParser(prog="maas_fuzz", description=__doc__)
    ap.add_argument("--target", action="append", required=True)
    ap.add_argument("--examples", type=int, default=300, help="requests per RPC")
    ap.add_argument("--timeout", type=float, default=10.0, help="deadline of each request (s)")
    args = ap.parse_args()
    faults = 0
    for target in args.target:
        with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
            print(f"{target}:", flush=True)
            for method in discover(channel):
                report = fuzz(channel, method, args.examples, args.timeout)
                print("  " + report.line(), flush=True)
                for f in report.faults:
                    print("    " + f, flush=True)
                faults += len(report.faults)
    sys.exit(1 if faults else 0)


if __name__ == "__main__":
    main()
