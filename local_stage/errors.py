"""Errors the local stage reports to a person: one line saying what is wrong and what to do."""


class LocalStageError(Exception):
    """A problem with the user's input (flags, template, artifact) with a message meant for them."""
