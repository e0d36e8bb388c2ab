"""The `s2i` command: what is not an asset run.

s2i profile show [--profile NAME_OR_PATH]    the validated settings in force (S2I_PROFILE by default)
"""

from __future__ import annotations

import argparse
import sys


def _profile_show(args: argparse.Namespace) -> int:
    import yaml

    from pipelines.profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
    except ProfileError as error:
        print(error, file=sys.stderr)
        return 2
    data = profile.model_dump(mode="json")
    print(f"# profile {profile.name} from {data.pop('path')}")
    data.pop("name")
    print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="s2i", description="Sound-to-Imagination tools")
    commands = parser.add_subparsers(dest="command", required=True)
    profile = commands.add_parser("profile", help="profiles").add_subparsers(dest="action", required=True)
    show = profile.add_parser("show", help="print the validated profile in force")
    show.add_argument("--profile", help="demo, vegas or a YAML path (default: S2I_PROFILE, else demo)")
    show.set_defaults(run=_profile_show)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
