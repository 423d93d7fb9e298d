"""Errors the local stage reports to a person: one line saying what is wrong and what to do."""

from container_contract.errors import ContainerError


class LocalStageError(ContainerError):
    """A problem with the user's input (flags, template, artifact) with a message meant for them.

    A ``ContainerError`` so that one ``except ContainerError`` reports both this and what the
    serving containers (``container_contract``) raise.
    """
