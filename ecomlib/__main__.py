"""Command line: ``python -m ecomlib local start|status|stop|reset|credentials``, ``demo``, ``bench``,
``teardown``, ``doctor``, ``edition student|answers|refresh``."""

from __future__ import annotations

import argparse
import json
import signal
import sys


def _local(args: argparse.Namespace) -> int:
    from ecomlib.local import server

    if args.action == "start":
        print(server.start())
        return 0
    if args.action == "status":
        info = server.status()
        if info is None:
            print(json.dumps({"running": False}))
            return 1
        print(json.dumps({"endpoint": info["endpoint"], "apis": info.get("apis", {})}))
        return 0
    if args.action == "stop":
        was_running = server.stop()
        print("stopped" if was_running else "not running")
        return 0
    if args.action == "reset":
        if server.status() is None:
            print("not running")
            return 1
        server.reset()
        print("reset: every resource in the embedded AWS is gone")
        return 0
    if args.action == "credentials":
        return _credentials(args.profile)
    raise AssertionError(args.action)


def _credentials(profile: str | None) -> int:
    """Give other tools (the AWS CLI, another SDK) the embedded AWS's own credentials:
    ``export`` lines for ``eval "$(python -m ecomlib local credentials)"``, or, with
    ``--profile NAME``, an AWS CLI profile (``aws --profile NAME ...``). They change each
    time the embedded AWS starts."""
    import configparser
    import os
    from pathlib import Path

    from ecomlib.config import settings
    from ecomlib.local import server

    endpoint = server.ensure_running()
    keys = server.credentials()
    region = settings().region or "us-east-1"
    if profile is None:
        print(f"export AWS_ACCESS_KEY_ID={keys['aws_access_key_id']}")
        print(f"export AWS_SECRET_ACCESS_KEY={keys['aws_secret_access_key']}")
        print(f"export AWS_DEFAULT_REGION={region}")
        print(f"export AWS_ENDPOINT_URL={endpoint}")
        print("unset AWS_SESSION_TOKEN AWS_PROFILE")
        return 0
    files = {"credentials": (Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")), profile),
             "config": (Path(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")), f"profile {profile}")}
    values = {"credentials": {"aws_access_key_id": keys["aws_access_key_id"],
                              "aws_secret_access_key": keys["aws_secret_access_key"]},
              "config": {"region": region, "endpoint_url": endpoint}}
    for kind, (path, section) in files.items():
        path = path.expanduser()
        parser = configparser.RawConfigParser()
        parser.read(path)
        if parser.has_section(section):
            parser.remove_section(section)
        parser.add_section(section)
        for name, value in values[kind].items():
            parser.set(section, name, value)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            parser.write(fh)
        os.replace(tmp, path)
    print(f"profile {profile} written: aws --profile {profile} ... (until the embedded AWS restarts)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ecomlib import demo

    print(json.dumps(demo.run(dataset=args.dataset, rows=args.rows, keep=args.keep)))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ecomlib import bench

    if args.notebooks is not None:
        result = bench.run_notebooks(dataset=args.dataset, notebooks=args.notebooks)
        print(bench.notebooks_table(result), file=sys.stderr, flush=True)
        print(json.dumps(result))
        return 1 if any(r["error"] for r in result["notebooks"]) else 0
    print(json.dumps(bench.run(dataset=args.dataset, rows=args.rows)))
    return 0


def _teardown(args: argparse.Namespace) -> int:
    from ecomlib import teardown

    if args.dry_run:
        print(json.dumps({"found": teardown.inventory(args.prefix)}))
        return 0
    try:
        deleted = teardown.run(args.prefix, log=lambda m: print(m, file=sys.stderr, flush=True))
    except teardown.LeftoverError as error:
        print(json.dumps({"left": error.left}))
        return 1
    print(json.dumps({"deleted": deleted, "left": {}}))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from ecomlib import doctor

    return doctor.main(["--no-aws"] if args.no_aws else [])


def _exit_on_signal(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second signal must not interrupt the clean-up
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command; returns the exit code."""
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so clean-up code (stopping an
    # embedded AWS that the command started) still runs.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    parser = argparse.ArgumentParser(prog="python -m ecomlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="manage the embedded AWS on 127.0.0.1")
    local.add_argument("action", choices=["start", "status", "stop", "reset", "credentials"])
    local.add_argument("--profile", help="credentials: write an AWS CLI profile of this name instead of "
                       "printing export lines")
    local.set_defaults(func=_local)

    demo = sub.add_parser("demo", help="run every pipeline on the dataset; print one JSON line")
    demo.add_argument("--dataset", help="path of the Online Retail CSV (default: ECOM_DATASET, "
                      "data/raw/data.csv, else the generated default dataset)")
    demo.add_argument("--rows", type=int, help="use only the first N rows")
    demo.add_argument("--keep", action="store_true",
                      help="leave the embedded AWS running afterwards to explore it")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="measure every stage on a private embedded AWS; print one JSON line")
    bench.add_argument("--dataset", help="path of the Online Retail CSV (default as for demo)")
    bench.add_argument("--rows", type=int, help="use only the first N rows")
    bench.add_argument("--notebooks", nargs="*", metavar="NB",
                       help="instead: run the notebooks (all, or those named, e.g. 00 01) in order, each in a "
                       "fresh kernel, and print each one's seconds and the slowest cells (a table, then JSON)")
    bench.set_defaults(func=_bench)

    down = sub.add_parser("teardown", help="delete every resource tagged with (or exactly named for) the prefix, then check; "
                          "exit 1 if anything is left")
    down.add_argument("--prefix", help="resource name prefix (default: ECOM_PREFIX, 'ecom')")
    down.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    down.set_defaults(func=_teardown)

    from ecomlib import edition

    editions = sub.add_parser("edition", help="write the student edition or the answer key; "
                              "refresh notebook outputs")
    edition.add_commands(editions)

    doctor = sub.add_parser("doctor", help="check this machine (Python, disk, ports, the embedded AWS, a tiny "
                            "pipeline); print the fix for each problem; exit 1 if any")
    doctor.add_argument("--no-aws", action="store_true", help="skip the embedded AWS and the pipeline")
    doctor.set_defaults(func=_doctor)

    args = parser.parse_args(argv)
    from ecomlib.preflight import NotConfirmed

    try:
        return args.func(args)
    except NotConfirmed as refused:  # the real-account target, not confirmed: say what and why
        print(refused, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
