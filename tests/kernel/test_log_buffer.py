"""The buffered log handler: informational lines in batches, warnings at once, nothing lost or reordered."""

import io
import logging
import time

from dgov.kernel.observability import BufferedStreamHandler


def make_logger(name, handler):
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_info_lines_wait_for_the_flusher_and_keep_their_order():
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, flush_interval=0.05)
    logger = make_logger("dgov.test.buffer.info", handler)
    for i in range(5):
        logger.info("line %d", i)
    assert stream.getvalue() == ""  # kept in memory, not written on the caller's thread
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stream.getvalue().splitlines() == [f"line {i}" for i in range(5)]


def test_a_warning_is_written_at_once_after_the_lines_before_it():
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, flush_interval=60)
    logger = make_logger("dgov.test.buffer.warning", handler)
    logger.info("first")
    logger.warning("second")
    assert stream.getvalue().splitlines() == ["first", "second"]


def test_a_full_buffer_and_flush_write_everything():
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, flush_interval=60, max_pending=3)
    logger = make_logger("dgov.test.buffer.full", handler)
    for i in range(4):
        logger.info("n%d", i)
    assert stream.getvalue().splitlines() == ["n0", "n1", "n2"]
    handler.flush()
    assert stream.getvalue().splitlines() == ["n0", "n1", "n2", "n3"]


def test_zero_interval_writes_every_line_at_once():
    stream = io.StringIO()
    logger = make_logger("dgov.test.buffer.off", BufferedStreamHandler(stream, flush_interval=0))
    logger.info("now")
    assert stream.getvalue() == "now\n"
