"""The one error a container, its artifact or its machine resources report to a person."""


class ContainerError(Exception):
    """The artifact breaks its container's contract, or the container cannot run as asked.

    The message is meant for a person: what is wrong and what to do.
    """
