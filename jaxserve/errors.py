"""Errors raised for bad user input (docs/spec.md §8)."""


class InputError(ValueError):
    """Bad user input: the message names the field, the value and what was expected."""
