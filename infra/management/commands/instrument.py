import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from infra.instrument import InvalidDefinition, inject_context


class Command(BaseCommand):
    help = "Print a state machine definition with the execution-context Pass state injected."

    def add_arguments(self, parser):
        parser.add_argument("definition", help="an Amazon States Language JSON file ('-': stdin)")

    def handle(self, *args, definition: str, **options):
        text = self.stdin.read() if definition == "-" else _read(definition)
        try:
            result = inject_context(text)
        except InvalidDefinition as exc:
            raise CommandError(f"{definition}: {exc}") from None
        self.stdout.write(json.dumps(result, indent=2))


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
