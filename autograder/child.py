"""Entry point of the child process that holds a submission: ``python -m autograder.child``.

It reads the submission, then answers requests one at a time over the pipe it was started with. The
submission's own printing goes nowhere: file descriptors 0-2 point at /dev/null once the channel is set up.
A reply that cannot be encoded (whatever the submission returned) is answered with an ``ErrorReply`` that
says so, never by ending the process: the parent would report a crash and blame ``sys.exit``.
"""

from __future__ import annotations

import os
import sys
import warnings


def _channel():
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    return proto_in, proto_out


def _encoded(reply) -> bytes:
    """``reply`` as a message, or an ``ErrorReply`` naming why it cannot be one."""
    from .protocol import encode
    from .requests import ErrorReply

    try:
        return encode(reply)
    except Exception as exc:  # noqa: BLE001 - a value the submission made, of any type
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return encode(ErrorReply(kind=type(exc).__name__,
                                 message=f"the grader could not read back what your code returned: {detail}"))


def main() -> int:
    # The engine's own modules first, while start-up errors can still reach the grader's log.
    import logging

    from .protocol import read_message, write_message, write_payload
    from .requests import InspectReply, execute
    from .source import namespace_from_source
    from .stand_ins import StandInAnswer, StandInFailed

    proto_in, proto_out = _channel()
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    submission = read_message(proto_in)
    threads = os.environ.get("AUTOGRADER_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    namespace, load_errors = namespace_from_source(submission)
    write_message(proto_out, InspectReply(kinds={}, parameters={}, load_errors=load_errors))
    me = os.getpid()

    def ask(call):
        """A stand-in's call to the grader, and its answer (``autograder.stand_ins``)."""
        write_payload(proto_out, _encoded(call))
        answer = read_message(proto_in)
        if not isinstance(answer, StandInAnswer):
            raise StandInFailed(f"the grader answered a stand-in's call with {type(answer).__name__}")
        return answer

    while True:
        try:
            request = read_message(proto_in)
        except EOFError:
            return 0
        reply = execute(request, namespace, load_errors, ask=ask)
        if os.getpid() != me:  # a copy made by os.fork in the submission: only the original answers
            os._exit(0)
        warnings.simplefilter("ignore")  # the submission may have changed the filters
        write_payload(proto_out, _encoded(reply))


if __name__ == "__main__":
    sys.exit(main())
