"""Errors that become error replies; anything else raised by an op is reported as `op_failed`."""


class BridgeError(Exception):
    """An error reply with a protocol error code; `fatal` tells the client the backend is going away."""

    code = "op_failed"

    def __init__(self, message: str, *, code: str | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.fatal = fatal


class BadMessage(BridgeError):
    """The frames do not form a request: bad JSON, missing fields, frame count mismatch."""

    code = "bad_message"


class BadTensor(BridgeError):
    """A tensor's dtype, shape or payload is wrong or does not agree with its metadata."""

    code = "bad_tensor"


class BadArgs(BridgeError):
    """An op's arguments (JSON or tensors) are missing, of the wrong type or out of range."""

    code = "bad_args"


class UnknownOp(BridgeError):
    code = "unknown_op"
