"""`amrbench augment-show NAME`: what an augmenter is (a family's own subcommand; light:
no torch at import)."""
from amrbench.hookspecs import hookimpl


def show(args, registry):
    print(registry.get("augmenter", args.name).description())


@hookimpl
def amrbench_add_commands(subparsers):
    p = subparsers.add_parser("augment-show", help="describe an augmenter")
    p.add_argument("name", help="an augmenter plugin")
    p.set_defaults(handler=show)
