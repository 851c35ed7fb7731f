"""Entry point of the child process that holds a submission: ``python -m autograder.child``.

It reads the submission, then answers requests one at a time over the pipe it was started with. The
submission's own printing goes nowhere: file descriptors 0-2 point at /dev/null once the channel is set up.
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


def main() -> int:
    # The engine's own modules first, while start-up errors can still reach the grader's log.
    import logging

    from .protocol import read_message, write_message
    from .requests import InspectReply, execute
    from .source import namespace_from_source

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
    while True:
        try:
            request = read_message(proto_in)
        except EOFError:
            return 0
        reply = execute(request, namespace, load_errors)
        if os.getpid() != me:  # a copy made by os.fork in the submission: only the original answers
            os._exit(0)
        warnings.simplefilter("ignore")  # the submission may have changed the filters
        write_message(proto_out, reply)


if __name__ == "__main__":
    sys.exit(main())
