"""Where a secret could leak, and the secrets the leak tests use (library and Home Assistant)."""

from __future__ import annotations

import logging
import traceback

PASSWORD = "Pw-4f7c2a91"  # the device's
TYPO = "Pw-4f7c2a9l"  # what the user typed instead
VIA_TAG = "d01e66aa55cc"
WRONG_TAG = "d01e66bb77ee"
SECRETS = (PASSWORD, TYPO, VIA_TAG, WRONG_TAG)


def fold(text: str) -> str:
    """``text`` as a secret is searched in it: case-folded, without whitespace."""
    return "".join(text.casefold().split())


class Evidence:
    """Everything a secret could leak into."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.secrets = list(SECRETS)

    def exception(self, err: BaseException) -> None:
        while err is not None:
            self.texts += [str(err), repr(err), *map(repr, err.args)]
            self.texts += traceback.format_exception(err)
            err = err.__cause__ or err.__context__

    def records(self, records: list[logging.LogRecord]) -> None:
        formatter = logging.Formatter()
        for record in records:
            self.texts += [formatter.format(record), repr(record.args), record.getMessage()]

    def assert_clean(self) -> None:
        """No secret in any text, in any letter case, whatever whitespace is in or around it."""
        assert self.texts
        for text in map(fold, self.texts):
            for secret in map(fold, self.secrets):
                assert secret not in text, text
